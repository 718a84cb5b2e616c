"""Everything after commit: RQ jobs, claims and the attempt log, retries, the pump and the worker entry point.

The request, the SSRF-safe HTTP client and the verdict on an answer are `dispatcher.egress`, which the
portal's send test uses too; `dispatcher` never imports this package.
"""
