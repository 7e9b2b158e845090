"""Sphinx extension: write each page's inline scripts once.

Sphinx 7.4 (the line Jupyter Book 1 pins) adds an inline script that an extension registers after
the builder starts (sphinx-thebe's `const THEBE_JS_URL = ...`, sphinx-togglebutton's selector) to
every page twice: once as `_JavaScript(None)`, once as `_JavaScript('')`, which do not compare
equal. The second `const` declaration is a SyntaxError in the browser ("Identifier 'THEBE_JS_URL'
has already been declared"), which tests/test_browser.py reports as a page error.
"""
from __future__ import annotations


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    seen = set()
    unique = []
    for script in context["script_files"]:
        key = (script.filename or "", script.priority, tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    # In place: it is the builder's own list, which later handlers may still append to.
    context["script_files"][:] = unique


def setup(app):
    # Late (default priority is 500), after the handlers that add page-specific scripts (MathJax).
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
