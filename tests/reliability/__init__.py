"""The reliability suite (``make reliability``): one test per failure scenario of the issue, on real servers."""
