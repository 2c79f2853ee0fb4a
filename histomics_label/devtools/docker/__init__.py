"""Docker on machines without a Docker service: a private daemon, and the CLI image built on it as a DSA host builds
it (the tests and the local stack use these; a DSA has its own Docker)."""
