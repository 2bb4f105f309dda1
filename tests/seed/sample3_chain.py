# Seed article, sample 3, verbatim (the article's text lost its indentation; restored).
import os
from yait_aichain.models import Model
from yait_aichain.skills import Skill
from yait_aichain.chain import Chain
from yait_aichain.pool import Pool, DONE, FAILED
from yait_aichain.tools import convertToMD
fetch = convertToMD()
summarise = Skill(
    model=Model("claude-sonnet-4-6", api_key=os.getenv("ANTHROPIC_API_KEY")),
    input={"messages": [{"role": "user", "parts": [
        "Summarise in one sentence:\n\n{result}"
    ]}]},
)
# Each Chain step is a tuple of (runner, output_key, input_mapping).
# Here: fetch writes its output to "result", mapped from the item's "source" field.
# The summarise Skill then reads {result} from that output key.
per_item = Chain(steps=[
    (fetch, "result", {"input": "source"}), # fetch page; store as "result"
    summarise, # summarise reads {result}
])
items = [
    {"source": "https://fr.lipsum.com"},
    {"source": "https://de.lipsum.com"},
    {"source": "https://es.lipsum.com"},
]
pool = Pool(per_item, items=items, max_flows=3)
results = pool.run()
for item, result in zip(items, results):
    print(f"[{item['source']}]\n{result}\n")
s = pool.status
print(f"done={s[DONE]} failed={s[FAILED]}")
