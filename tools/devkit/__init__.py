"""Development harness for the classifiedads.consolidation collection.

Nothing in here ships with the collection (see ``build_ignore`` in galaxy.yml):
it starts throwaway PostgreSQL clusters, builds the legacy ClassifiedAds
databases and stands in for the application's migrator, so that the demo and
the test suite run against real PostgreSQL on a developer machine or in CI.
"""
