"""Session pages served by the read API under ``/ui``: server-rendered HTML, no build step.

``auth`` signs a browser in once (``/ui?token=...`` sets an HttpOnly cookie);
``pages`` renders a student's session list and a session timeline from the same
models the JSON API returns.
"""
