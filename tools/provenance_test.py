"""//tools:provenance: a record's stored code is a cut of what Warp compiled for it, and an edit
of the stored code is caught.
"""

import json
import os
import sys

import pytest

import pipeline
from tools import provenance


def test_generated_code_is_a_cut_of_what_warp_compiled_and_an_edit_is_not(tmp_path):
    out = str(tmp_path / "run")
    pipeline.run(pipeline.RunConfig("cuda", 12, 5, out, ["stencil", "tile_scan", "particles"], workers=1, quiet=True))
    result = provenance.provenance(out)
    assert result["records"] == 12 and result["texts"] == 48 == result["found"], result["problems"]
    # the old extraction's CPU text (generated for block_dim 256: no contiguous-stride block) is not
    shard = os.path.join(out, "shard-00000.jsonl")
    recs = [json.loads(line) for line in open(shard)]
    k = next(i for i, r in enumerate(recs) if "wp_contiguous_args" in r["ir"]["cpp"]["forward"])
    fwd = recs[k]["ir"]["cpp"]["forward"]
    start = fwd.index("    wp_args_")
    end = fwd.index("    //---------", start)
    recs[k]["ir"]["cpp"]["forward"] = fwd[:start] + fwd[end:]
    with open(shard, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs)
    result = provenance.provenance(out)
    assert result["found"] == 47 and result["problems"][0].startswith(recs[k]["id"]), result


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
