"""//report:explore on a small real release (30 CPU and 20 CUDA kernels through the pipeline) and on
forged copies of it, opened in Debian's headless Chromium driven by Selenium through Debian's
chromedriver (both installed by ./bazelw). What the pages show is compared with the release's
Parquet rows read here with pyarrow, not with the explorer's own data files. Screenshots go to
the test's outputs (bazel-testlogs/report/explore_test/test.outputs/outputs.zip).

Over 400 lines: one browser session and one small release serve every check here; split into
files, each would start Chromium and build the release again."""

import json
import os
import re
import sys
import time

import pyarrow.parquet as pq
import pytest

from tools import testing

TMP = testing.tmp_root("/tmp/explore_test")
os.environ.setdefault("MPLCONFIGDIR", os.path.join(TMP, "mpl"))
SHOTS = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or os.path.join(TMP, "shots")
os.makedirs(SHOTS, exist_ok=True)

from report import explore_browser, explore_data, explore_main  # noqa: E402

# a string that runs script wherever a page puts it into the document as markup
PAYLOAD = ('<script>window.__pwned="s"</script><img src=x onerror="window.__pwned=\'i\'">'
           '</script><svg onload="window.__pwned=\'v\'"></svg>"\'&amp;\u2028')
INJECTED = "img:not(figure img), svg, iframe, object, embed, [onerror], [onload], [onclick]"


@pytest.fixture(scope="module")
def dist():
    return testing.small_release(TMP)


@pytest.fixture(scope="module")
def site(dist):
    out = testing.fresh_dir(TMP, "site")
    assert explore_main.main([dist, "--out", out]) == 0
    return out


@pytest.fixture(scope="module")
def browser():
    driver = explore_browser.headless_chromium(os.path.join(TMP, "home"), log_requests=True)
    yield driver
    driver.quit()


def rows_of(dist):
    """Every row of the release, read with pyarrow, by id."""
    m = testing.read_manifest(dist)
    out = {}
    for f in m["files"]:
        if f["path"].endswith(".parquet"):
            for r in pq.read_table(os.path.join(dist, f["path"])).to_pylist():
                out[r["id"]] = dict(r, config=f["config"])
    return out


def wait(cond, seconds=20):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.03)
    raise AssertionError("the page did not get there in time")


def open_page(d, site, page, hash_=""):
    """Opens `page` of the site afresh with `hash_` and waits until its script has rendered it."""
    d.get("about:blank")
    d.get(f"file://{site}/{page}" + (f"#{hash_}" if hash_ else ""))
    if page != "index.html":
        wait(lambda: d.execute_script("return document.body.dataset.ready !== undefined"))
    assert not d.find_elements("id", "error"), d.find_element("id", "error").text


def rendered(d, renders):
    """Waits for the next render after the `renders`-th."""
    wait(lambda: int(d.execute_script("return document.body.dataset.renders || '0'")) > renders)
    assert not d.find_elements("id", "error"), d.find_element("id", "error").text


def renders(d):
    return int(d.execute_script("return document.body.dataset.renders || '0'"))


def list_ids(d):
    return [a.text for a in d.find_elements("css selector", "#rows a.pair-link")]


def choose(d, kind, value):
    from selenium.webdriver.support.ui import Select

    n = renders(d)
    sel = Select(d.find_element("id", f"f-{kind}"))
    values = [o.get_attribute("value") for o in sel.options]
    # a long value is shown cut (explore_data.short): `value` may be its start
    sel.select_by_index(values.index(value) if value in values else
                        next(k for k, v in enumerate(values) if v and v.startswith(value)))
    rendered(d, n)


PANE_TEXT = """return Array.from(document.querySelectorAll(arguments[0] + ' .line')).map(
  (l) => Array.from(l.childNodes).filter((n) => !(n.classList && (n.classList.contains('lno') ||
  n.classList.contains('llink')))).map((n) => n.textContent).join('')).join('\\n');"""


def pane(d, which):
    return d.execute_script(PANE_TEXT, "#" + which)


def test_overview_counts_and_checks_equal_the_release(site, dist, browser):
    d = browser
    open_page(d, site, "index.html")
    d.save_screenshot(os.path.join(SHOTS, "overview.png"))
    m = testing.read_manifest(dist)
    shown = [[td.text for td in tr.find_elements("tag name", "td")]
             for tr in d.find_elements("css selector", "table.counts tbody tr")]
    want = [[c, fam, *(str(v.get(s, 0)) for s in ("train", "validation", "test", "total"))]
            for c in sorted(m["counts"]["configs"]) for fam, v in sorted(m["counts"]["configs"][c]["families"].items())]
    assert shown == want
    rows = rows_of(dist)
    for tr in d.find_elements("css selector", "table.checks tbody tr"):
        cells = [td.text for td in tr.find_elements("tag name", "td")]
        name = cells[0]
        for status, n in zip(("passed", "failed", "inconclusive", "not_run"), cells[1:]):
            assert int(n) == sum(json.loads(r["checks"]).get(name, {}).get("status") == status for r in rows.values())
    cov = next(p.text for p in d.find_elements("css selector", "p") if "distinct Warp builtins" in p.text)
    builtins = int(re.search(r"call (\d+) distinct", cov).group(1))
    assert len(d.find_elements("css selector", "figure img")) >= 4
    for img in d.find_elements("css selector", "figure img"):  # every plot loaded
        assert d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
    open_page(d, site, "list.html")  # the list filters by each builtin the overview counts
    assert len(d.find_elements("css selector", "#f-builtin option")) - 1 == builtins > 5


def test_the_list_filters_pages_and_searches(site, dist, browser):
    d, rows = browser, rows_of(dist)
    open_page(d, site, "list.html", "per=10")
    assert d.find_element("id", "count").text == f"{len(rows)} matching pairs"
    first = list_ids(d)
    assert len(first) == 10 and d.find_element("id", "page").text == f"page 1 of {-(-len(rows) // 10)}"
    n = renders(d)
    d.find_element("id", "next").click()
    rendered(d, n)
    second = list_ids(d)
    assert len(second) == 10 and not set(first) & set(second)
    d.save_screenshot(os.path.join(SHOTS, "list.png"))
    fam = "arith"
    choose(d, "family", fam)
    want = sorted(i for i, r in rows.items() if r["family"] == fam)
    assert d.find_element("id", "count").text == f"{len(want)} matching pairs"
    assert "page=" not in d.current_url  # a new filter starts at page 1
    every = []
    while True:  # page through the filtered list
        every += list_ids(d)
        if not d.find_element("id", "next").is_enabled():
            break
        n = renders(d)
        d.find_element("id", "next").click()
        rendered(d, n)
    assert sorted(every) == want
    check = "execute_backward_cpu: not_run"
    choose(d, "check", check)
    want2 = sorted(i for i in want if json.loads(rows[i]["checks"])["execute_backward_cpu"]["status"] == "not_run")
    assert d.find_element("id", "count").text == f"{len(want2)} matching pairs"


def test_the_builtin_filter_lists_exactly_the_pairs_that_call_it(site, dist, browser):
    d, rows = browser, rows_of(dist)
    for name in ("sin", "where", "tid"):
        open_page(d, site, "list.html", f"builtin={name}&per=500")
        want = sorted(i for i, r in rows.items() if re.search(rf"\bwp\.{name}\(", r["source"]))
        assert want, name
        assert sorted(list_ids(d)) == want, name


def test_search_by_id_prefix_and_by_kernel_name(site, dist, browser):
    d, rows = browser, rows_of(dist)
    some = sorted(rows)[7]
    open_page(d, site, "list.html")
    box = d.find_element("id", "q")
    box.send_keys(some[:5].upper())  # case does not matter
    n = renders(d)
    d.find_element("id", "go").click()
    rendered(d, n)
    assert list_ids(d) == sorted(i for i in rows if i.startswith(some[:5]))
    open_page(d, site, "list.html", "q=" + rows[some]["kernel_name"])
    assert list_ids(d) == [some]
    open_page(d, site, "list.html", "q=zzzz")
    assert list_ids(d) == [] and d.find_element("id", "count").text == "0 matching pairs"


def test_search_files_split_by_prefix_still_find_every_key(dist, browser, monkeypatch):
    """With at most 4 keys a search file, prefixes split deep; every id prefix of 2 to 6
    characters still finds exactly the ids that start with it."""
    monkeypatch.setattr(explore_data, "SEARCH_BUCKET", 4)
    out = testing.fresh_dir(TMP, "site_split")
    assert explore_main.main([dist, "--out", out]) == 0
    assert any(len(name) > 4 for name in os.listdir(os.path.join(out, "data", "search")))  # hex of > 2 chars
    d, rows = browser, rows_of(dist)
    for some in sorted(rows)[::9]:
        for n in (2, 3, 6):
            open_page(d, out, "list.html", f"q={some[:n]}&per=500")
            # the list is in row order (config, split, ...), not id order: the same ids, each once
            assert sorted(list_ids(d)) == sorted(i for i in rows if i.startswith(some[:n])), some[:n]


def test_a_pair_page_shows_every_field_of_its_row_and_links_lines(site, dist, browser):
    d, rows = browser, rows_of(dist)
    open_page(d, site, "list.html", "family=stencil")
    pid = list_ids(d)[0]
    r = rows[pid]
    d.find_element("link text", pid).click()
    wait(lambda: d.execute_script("return document.body.dataset.page === 'pair' && "
                                  "document.body.dataset.ready !== undefined"))
    assert d.find_element("id", "kernel").text == r["kernel_name"]
    assert pane(d, "py") == r["source"]
    assert d.find_elements("css selector", "#py .k")  # highlighted: Python keywords have their class
    fields = ["ir_cpp_forward", "ir_cpp_backward", "ir_cuda_forward", "ir_cuda_backward", "ptx_sm_90"]
    for f in fields:
        n = renders(d)
        d.find_element("id", f"tab-{f}").click()
        rendered(d, n)
        assert pane(d, "ir") == r[f], f
    checks = [[td.text for td in tr.find_elements("tag name", "td")]
              for tr in d.find_elements("css selector", "#checks tbody tr")]
    want = json.loads(r["checks"])
    assert checks == [[k, v["status"], v.get("reason", "")] for k, v in sorted(want.items())]
    names = [tr.find_element("tag name", "td").text for tr in d.find_elements("css selector", "table.values tbody tr")]
    for name in json.loads(r["inputs"]):
        assert name in names
    n = renders(d)
    d.find_element("id", "tab-ir_cpp_forward").click()
    rendered(d, n)
    link = d.find_elements("css selector", "#ir a.llink")[-1]  # far down the pane
    line = int(link.get_attribute("data-line"))
    comment = link.find_element("xpath", "..").text
    n = renders(d)
    link.click()
    rendered(d, n)
    hit = d.find_element("id", f"py-L{line}")
    assert "hit" in hit.get_attribute("class") and f"L={line}" in d.current_url
    at = d.find_element("css selector", "#ir .line.hit")  # the line followed, marked and in view
    assert f"<L {line}>" in at.text and d.execute_script(
        "const p = document.getElementById('ir'), l = arguments[0];"
        "return l.offsetTop >= p.scrollTop && l.offsetTop < p.scrollTop + p.clientHeight;", at)
    # Warp's comment quotes the very line it links to
    assert r["source"].split("\n")[line - 1].strip() in comment
    d.save_screenshot(os.path.join(SHOTS, "pair.png"))


def _forge_row(r, k):
    """Every string field of the row `r` made hostile; the fields the reader requires keep their
    shape (split one of three, checks and coverage with their statuses and counts)."""
    r = dict(r)
    for f in ("source", "ir_cpp_forward", "ir_cpp_backward", "ir_cuda_forward", "ir_cuda_backward", "ptx_sm_90"):
        r[f] = PAYLOAD + "\n" + r[f] + "\n// " + PAYLOAD + "   <L 1>"
    r["id"] = f"{k:04d}" + PAYLOAD
    r["kernel_name"] = PAYLOAD + r["kernel_name"]
    r["family"] = PAYLOAD
    r["target"] = PAYLOAD
    r["skeleton_hash"] = PAYLOAD
    checks = json.loads(r["checks"])
    for c in checks.values():
        c["reason"] = PAYLOAD
    checks[PAYLOAD] = {"status": PAYLOAD, "reason": PAYLOAD}
    r["checks"] = json.dumps(checks)
    for f in ("inputs", "outputs"):
        v = json.loads(r[f])
        v[PAYLOAD] = {"data": [PAYLOAD, 1.0], "dtype": PAYLOAD, "shape": PAYLOAD}
        r[f] = json.dumps(v)
    r["grad"] = json.dumps({"point": PAYLOAD, PAYLOAD: PAYLOAD, "g": {PAYLOAD: {"data": [PAYLOAD], "dtype": "x", "shape": [1]}}})
    r["spec"] = json.dumps({PAYLOAD: PAYLOAD})
    r["args"] = json.dumps([PAYLOAD])
    return r


@pytest.fixture(scope="module")
def forged(dist):
    path = testing.fresh_copy(TMP, dist, "forged")
    m = testing.read_manifest(path)
    k = 0
    for f in m["files"]:
        if f["path"].endswith(".parquet"):
            rows = []
            for r in pq.read_table(os.path.join(path, f["path"])).to_pylist():
                rows.append(_forge_row(r, k))
                k += 1
            testing.resign_shard(path, f["path"], rows, m)
    for c in m["counts"]["configs"].values():
        fams = c["families"]
        merged = {s: sum(v.get(s, 0) for v in fams.values()) for s in ("train", "validation", "test", "total")}
        c["families"] = {PAYLOAD: merged}
    for i in m["inputs"]:
        i["rejects_by_reason"] = {PAYLOAD: 3}
    testing.write_manifest(path, m)
    out = testing.fresh_dir(TMP, "forged_site")
    assert explore_main.main([path, "--out", out]) == 0
    return out


def _inert(d, site, where):
    """Nothing from a record ran or became an element on the page now open, and the payload is
    on it as text."""
    assert d.execute_script("return window.__pwned === undefined"), where
    assert d.execute_script(f"return document.querySelectorAll('{INJECTED}').length") == 0, where
    srcs = d.execute_script("return Array.from(document.scripts).map((s) => s.src)")
    assert all(s.startswith(f"file://{site}/assets/") or s.startswith(f"file://{site}/data/") for s in srcs), srcs
    assert '<script>window.__pwned="s"</script>' in d.find_element("tag name", "body").text, where
    blocked = [e["message"] for e in d.get_log("browser") if "Content Security Policy" in e["message"]]
    assert not blocked, blocked  # nothing even tried to run


def test_record_text_is_shown_as_text_and_never_runs(forged, browser):
    from urllib.parse import quote

    d = browser
    d.get_log("browser")
    open_page(d, forged, "index.html")
    _inert(d, forged, "overview")
    open_page(d, forged, "list.html", "per=20")
    _inert(d, forged, "list")
    choose(d, "family", PAYLOAD)
    _inert(d, forged, "list by family")
    assert d.find_element("id", "count").text == "50 matching pairs"
    choose(d, "check", PAYLOAD[:50])
    _inert(d, forged, "list by check")
    assert d.find_element("id", "count").text == "50 matching pairs"
    open_page(d, forged, "list.html", "q=" + quote("0003" + PAYLOAD[:20]))
    assert len(list_ids(d)) == 1
    _inert(d, forged, "search")
    for row in (0, 31):
        open_page(d, forged, "pair.html", f"row={row}")
        _inert(d, forged, f"pair {row}")
        for tab in [t.get_attribute("id") for t in d.find_elements("css selector", ".tabs button")]:
            n = renders(d)
            d.find_element("id", tab).click()
            rendered(d, n)
            _inert(d, forged, f"pair {row} {tab}")
    d.save_screenshot(os.path.join(SHOTS, "forged_pair.png"))


def test_overview_links_open_the_pairs_behind_each_count(site, dist, browser):
    """A family's link opens the list of that config and family; a check count's link opens the
    list of exactly that many pairs."""
    d, m = browser, testing.read_manifest(dist)
    open_page(d, site, "index.html")
    d.find_element("link text", "stencil").click()
    wait(lambda: d.execute_script("return document.body.dataset.ready !== undefined"))
    n = m["counts"]["configs"]["cuda"]["families"]["stencil"]["total"]
    assert d.find_element("id", "count").text == f"{n} matching pairs"
    open_page(d, site, "index.html")
    row = next(tr for tr in d.find_elements("css selector", "table.checks tbody tr")
               if tr.find_element("tag name", "td").text == "execute_backward_cpu")
    link = row.find_elements("css selector", "td a")[-1]
    want = link.text
    link.click()
    wait(lambda: d.execute_script("return document.body.dataset.ready !== undefined"))
    assert d.find_element("id", "count").text == f"{want} matching pairs"


def _requests(d, site, page, hash_):
    """The paths (inside the site) a fresh load of `page#hash_` requested."""
    d.get_log("performance")
    open_page(d, site, page, hash_)
    urls = [m["params"]["request"]["url"] for m in map(lambda e: json.loads(e["message"])["message"],
                                                      d.get_log("performance"))
            if m["method"] == "Network.requestWillBeSent"]
    assert all(u.startswith(f"file://{site}/") for u in urls), urls
    return sorted(u[len(f"file://{site}/"):].split("#")[0] for u in urls)


def test_a_page_loads_only_the_chunks_it_shows(site, browser):
    """The first list page loads one chunk of rows and no facet; a filtered one the facet files
    of its filters; a pair page one chunk of pairs: nothing grows with the release."""
    d = browser
    assets = ["assets/boot.js", "assets/code.css", "assets/explore.css", "assets/explore.js", "data/meta.js"]
    data = [u for u in _requests(d, site, "list.html", "") if u.startswith("data/") and u != "data/meta.js"]
    assert data == ["data/rows/000000.js"]
    data = [u for u in _requests(d, site, "list.html", "family=arith&split=train") if u.startswith("data/f")]
    assert len(data) == 2
    got = _requests(d, site, "pair.html", "row=30")
    assert got == sorted(["pair.html", *assets, "data/pairs/000001.js"]), got


def test_every_page_forbids_third_party_requests_and_makes_none(site, browser):
    d = browser
    for page in ("index.html", "list.html", "pair.html"):
        with open(os.path.join(site, page), encoding="utf-8") as f:
            text = f.read()
        assert f'content="{explore_main.explore_site.CSP}"' in text and "default-src 'none'" in text
        assert not re.search(r"(src|href)=\"(https?:)?//", text), page
        assert len(_requests(d, site, page, "row=1" if page == "pair.html" else "")) >= 3


def test_the_same_release_gives_the_same_site(site, dist):
    again = testing.fresh_dir(TMP, "site_again")
    assert explore_main.main([dist, "--out", again]) == 0
    def tree(root):
        out = {}
        for base, _, names in os.walk(root):
            for n in names:
                with open(os.path.join(base, n), "rb") as f:
                    out[os.path.relpath(os.path.join(base, n), root)] = f.read()
        return out
    a, b = tree(site), tree(again)
    assert sorted(a) == sorted(b) and all(a[k] == b[k] for k in a)


def test_bad_input_is_one_line_and_leaves_what_was_there(dist, capsys, tmp_path):
    assert explore_main.main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not a directory" in err
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "mine.txt").write_text("mine")
    assert explore_main.main([dist, "--out", str(keep)]) == 2
    err = capsys.readouterr().err
    assert "not a previous explorer" in err and err.count("\n") == 1
    assert (keep / "mine.txt").read_text() == "mine"


def test_data_scripts_cannot_be_broken_out_of():
    js = explore_data.js_call("pairs", 0, ["</script><script>x()</script>\u2028\u2029"])
    assert "</script>" not in js and "\u2028" not in js and "\u2029" not in js
    assert json.loads(js[len("EXPLORE.pairs(0,"):-3]) == ["</script><script>x()</script>\u2028\u2029"]
    hl = explore_data.Highlighter()
    for text, lang in (("def f(x):\n    return x  # c\n", "python"), ("int a = 1; // <L 3>\n", "cpp"),
                       (".reg .f32 %f<4>;\n", "ptx"), ("", "cuda")):
        t, runs = hl(text, lang)
        assert t == text and sum(runs[1::2]) == len(text)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
