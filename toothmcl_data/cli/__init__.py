"""The ``toothmcl-data`` command line: parses arguments and calls the library; holds no logic of its own."""
