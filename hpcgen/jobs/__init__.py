"""Jobs: the bodies of the CLI verbs. They own files, MPI and progress bars; the library below them does not."""
