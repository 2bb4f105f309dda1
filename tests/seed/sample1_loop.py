# Seed article, sample 1, verbatim (the article's text lost its indentation; restored).
import os
from yait_aichain.models import Model
from yait_aichain.skills import Skill
skill = Skill(
    model=Model("claude-sonnet-4-6", api_key=os.getenv("ANTHROPIC_API_KEY")),
    input={"messages": [{"role": "user", "parts": [
        "Summarise in two sentences:\n\n{text}"
    ]}]},
)
documents = [{"text": f"Document {i} content..."} for i in range(50)]
results = []
for doc in documents:
    result = skill.run(doc)
    results.append(result)
