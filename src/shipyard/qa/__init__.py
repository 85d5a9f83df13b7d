"""QA gates run against the staging endpoint: load, performance, model quality, JUnit reports.

Deliberately empty of imports: each gate is imported from its own module, so that importing
the load generator never pulls in scikit-learn.
"""
