"""Process plumbing, below every other room: where a user's relative path points, where a worker
keeps its temporary files, and how a command stops on SIGTERM."""
