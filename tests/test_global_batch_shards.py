"""GlobalBatchShards: N processes step through exactly the one-process batches, the partial last one split evenly."""

import torch

from medvl_core.train.distributed import GlobalBatchShards


def shards(n_items, global_batch, world, drop_last=False, seed=3):
    """Each rank's batches through a DataLoader, as the engine builds it (the loader draws from the generator too)."""
    out = []
    for rank in range(world):
        generator = torch.Generator().manual_seed(seed)
        sampler = GlobalBatchShards(n_items, global_batch, rank, world, generator, drop_last)
        out.append([b.tolist() for b in torch.utils.data.DataLoader(range(n_items), batch_sampler=sampler,
                                                                    generator=generator)])
    return out


def test_union_of_shards_is_the_one_process_batch_order():
    one = list(torch.utils.data.DataLoader(range(30), batch_size=8, shuffle=True,
                                           generator=torch.Generator().manual_seed(3)))
    two = shards(30, 8, 2)
    assert [len(s) for s in two] == [4, 4] and len(GlobalBatchShards(30, 8, 0, 2, None)) == 4
    for step, batch in enumerate(one):
        assert two[0][step] + two[1][step] == batch.tolist()
    assert [len(b) for b in two[0]] == [4, 4, 4, 3] and [len(b) for b in two[1]] == [4, 4, 4, 3]


def test_drop_last_and_a_last_batch_smaller_than_the_world():
    assert [len(s) for s in shards(30, 8, 2, drop_last=True)] == [3, 3]
    three = shards(25, 8, 3)  # 8, 8, 8, then 1 item for 3 processes: dropped (a process would have none)
    assert [len(s) for s in three] == [3, 3, 3] and len(GlobalBatchShards(25, 8, 0, 3, None)) == 3
    assert sorted(i for s in three for b in s for i in b) == sorted(set(i for s in three for b in s for i in b))
