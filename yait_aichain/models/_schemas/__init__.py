"""Each provider's structured-output dialect: the caller's JSON Schema in, the schema that
provider accepts out, or :class:`~yait_aichain.errors.UnsupportedSchemaError` before any
request is sent. This is the one place where schemas are rewritten for a provider.

The rule every conversion keeps: what is *sent* may be narrower than the caller's schema
(every property required, objects closed) or lose an assertion keyword the provider cannot
enforce (``minLength``, ``maximum``...): the Skill validates each answer against the
caller's own schema, so a dropped keyword is still checked, and it is also restated in the
description so the model sees it. Structure a provider cannot express (a free-form map
under a strict mode, recursion where references must be inlined, a root that is not an
object, external references) is refused with the path and a way out.

Dialects:

- OpenAI strict ``json_schema``: closed objects, all properties required, supported
  keywords only, at most 10 levels of nested objects, 5000 properties, 1000 enum values,
  120,000 characters of names and values; root must be an object.
- Anthropic ``output_config.format`` (Claude 4.5 models and later): closed objects,
  primitive enums, ``minItems`` 0 or 1, no numeric or length bounds, no recursion.
  Older Claude models get a forced tool whose ``input_schema`` takes JSON Schema as is.
- Gemini ``responseJsonSchema``: references kept, string and number enums, no length or
  pattern bounds, any root type, no maps, no tuples, no recursion.
"""

from ._common import self_contained
from ._jsonschema import (anthropic_native, anthropic_tool, claude_has_native_output,
                          gemini_schema, openai_strict)

__all__ = ["anthropic_native", "anthropic_tool", "claude_has_native_output", "gemini_schema",
           "openai_strict", "self_contained"]
