"""The Nameko reference application's test kit: see docs/testing.md, "The test kit"."""
