"""The benchmark (``make bench``): what the API adds on top of the database.

The primary figure is the API process's own CPU time per request, compared with a
baseline measured in the same run (a bare Starlette endpoint in the same process for
reads, direct repository calls for the worker lifecycle). See README, "Performance".
"""
