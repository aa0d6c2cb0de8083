"""Generic graphql-core machinery (fast executor, document cache, express lane); knows no job."""
