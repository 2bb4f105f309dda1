"""Tools: units of work that a Chain or Pool runs like a Skill; both can be shared between threads.

- :class:`Tool` is the base for your own tools: a name, a JSON-schema ``parameters``
  block and ``run(**kwargs)``; arguments are checked before ``run`` starts.
- :class:`convertToMD` turns a URL, raw HTML or (under ``root=``) a local file into
  Markdown, fetching under an SSRF guard with size, time and content-type caps; PDF,
  DOCX, XLSX and PPTX too with the ``[documents]`` extra.
"""

from ._convert import convertToMD
from ._tool import Tool

__all__ = ["Tool", "convertToMD"]
