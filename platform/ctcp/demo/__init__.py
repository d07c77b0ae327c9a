"""`ctcp demo`: a fictional but living data set, built through the platform's services."""
