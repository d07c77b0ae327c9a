"""`ctcp demo`: a fictional but living data set, built through the platform's services.

A package apart from `ctcp`, so the product wheel and image hold none of it; the dev
dependency group installs it, and `ctcp demo` says so when it is missing.
"""
