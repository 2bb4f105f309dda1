# Seed article: the max_flows and status snippets, verbatim, with the names they assume.
from yait_aichain.pool import Pool, DONE, FAILED
pool = Pool(skill, items=documents, max_flows=10)
results = pool.run()
s = pool.status
print(f"done={s[DONE]} failed={s[FAILED]}")
