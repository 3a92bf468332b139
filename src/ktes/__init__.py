"""ktes: a GA4GH Task Execution Service (TES 1.1) server for Kubernetes and the local machine."""

__version__ = "0.1.0"
