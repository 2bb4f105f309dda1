# summarise_on_dask.py: a Pool whose items run on a Dask cluster.
from distributed import Client, LocalCluster

from yait_aichain import FAILED, Model, Pool, Skill


def summarise(texts, client, max_flows=16):
    # No api_key here: every worker reads ANTHROPIC_API_KEY from its own environment.
    skill = Skill(model=Model("claude-haiku-4-5"), prompt="Summarise in one sentence: {text}")
    pool = Pool(
        skill,
        [{"text": text} for text in texts],
        max_flows=max_flows,                        # tasks on the cluster at once
        executor=client.get_executor(pure=False),   # pure=False: never merge equal calls
    )
    summaries = pool.run()                          # ordered; None where an item failed
    for record in pool.failures:
        print(f"item {record.index} failed: {record.error_type}: {record.error_message}")
    return summaries, pool.status[FAILED]


if __name__ == "__main__":  # process-based clusters need the guard
    # Or Client("tcp://scheduler:8786") for a real cluster: set the key on its workers.
    with LocalCluster(n_workers=2, threads_per_worker=8) as cluster, Client(cluster) as client:
        summaries, failed = summarise(["First text ...", "Second text ..."], client)
        print(summaries)
