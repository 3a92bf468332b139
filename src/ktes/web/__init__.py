"""The dashboard at ``/ui/``: server-rendered page shells and one hand-written script, all in the package."""
