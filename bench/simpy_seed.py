#!/usr/bin/python3
"""A SimPy model of the seed scenario, scenarios/himamba-sidecar-lag.json, to compare the CPU cost
of one run against `hcsim run` doing the same simulation.

It is a benchmark peer of hcsim for this one scenario: the same actors, the same collectives in the
same order with the same payload sizes, the same delays. Each rank of the TP group runs four SimPy
processes: the scheduler (receive and broadcast arrivals, loading_check, the MIN-agreed drain of the
storage control queues, then the admission walk, whose check_prefetch_progress votes with a MAX
all-reduce and agrees on the completed tokens with a MIN, and a forward or a one-pass sleep), the
prefetch thread (L3 hit query, MIN on the prefetch group), the IO thread (the KV batch read, the
file backend's page-by-page copy into the host pool, then the Mamba sidecar read) and the backup
thread. A collective is an event that completes for every member when its cost has passed since
the last member entered; members that enter different ops or sizes at one sequence number are a
collective mismatch. L3 calls are timeouts: call latency plus bytes over the read bandwidth, plus
the scenario's delay rule and jitter. Jitter and the arrival shift are drawn from seeded Python
RNGs, so their values differ from hcsim's, not their ranges. The run ends as hcsim's does: 1 ms
after a mismatch, or 20 ms after every rank forwarded every request (later if an L3 call is still
due). SimPy events are counted as the environment processes them; they are not hcsim's kernel
events one for one (a collective here is two: the timeout of its cost and the event its members
wait on).

Variants: `pre-fix` is HiMamba before sgl-project/sglang#27366, whose can_terminate_prefetch does
not wait for the sidecar transfer: rank 0 terminates with its Mamba state, rank 1 without (its read
lags 488 ms), and they enter forwards of different sizes. `seed-fix` adds that pull request's guard:
KV done with a pool transfer pending votes "cannot terminate".

Left out: the host slot pools (they never run short here), hence the slot-ownership check, and
every invariant but matching collectives; and the paths this scenario never takes: revokes below
the prefetch threshold, short reads, aborts, write-through backups (off, so the backup thread only
waits), the prefetch timeout (wait_complete ignores it) and the admission budgets (one 2100-token
request fits). The numbers the scenario sets are read from its file, the others are hcsim's
defaults (below); a file of another shape is refused.

    $ bench/simpy_seed.py --variant pre-fix
    variant    pre-fix, seed 1
    verdict    collective_mismatch at 15.980 ms
               tp_cpu_group seq 49: rank 0 entered forward(52), rank 1 forward(2100)
    requests   R: rank 0 at 15.980 ms (extend 52 tokens), rank 1 at 15.980 ms (extend 2100 tokens)
    run        50 collectives, 216 SimPy events, ended at 16.980 ms, 0.6 ms CPU
"""
import argparse
import collections
import dataclasses
import json
import random
import statistics
import sys
import time
import typing
from pathlib import Path

try:
    import simpy
except ImportError:
    sys.exit("simpy_seed.py: SimPy is missing: install Debian's python3-simpy3 and run this with /usr/bin/python3")

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "himamba-sidecar-lag.json"
VARIANTS = {"pre-fix": False, "seed-fix": True}  # variant -> pool-transfer guard (#27366)

# hcsim's defaults for what the scenario leaves unset (policy_config.h, storage.h, world_config.h).
STORAGE_BATCH_PAGES = 128
HOST_COPY_BYTES_PER_NS = 10.0  # the file backend's copy of each page into the host pool
H2D_COPY_LATENCY_NS = 10_000  # load-back, host to device
H2D_COPY_BYTES_PER_NS = 25.0
SETTLE_NS = 1_000_000  # after a mismatch, ranks a little behind still arrive
QUIESCE_NS = 20_000_000  # after completion, in-flight work drains
HORIZON_NS = 120_000_000_000

BROADCAST, ALL_REDUCE_MIN, ALL_REDUCE_MAX, FORWARD = "broadcast", "all_reduce(MIN)", "all_reduce(MAX)", "forward"
REDUCERS = {ALL_REDUCE_MIN: min, ALL_REDUCE_MAX: max}


class ScenarioError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# The scenario


@dataclasses.dataclass(frozen=True)
class Request:
    name: str
    arrival_ns: int
    input_tokens: int
    pages: int  # whole pages of its input


@dataclasses.dataclass(frozen=True)
class DelayRule:
    op: str
    ranks: frozenset  # empty: every rank
    requests: frozenset  # request names; empty: every request
    fixed_ns: int


@dataclasses.dataclass(frozen=True)
class Params:
    seed: int
    tp: int
    pass_ns: int
    page_tokens: int
    call_latency_ns: int
    read_bytes_per_ns: float
    kv_page_bytes: int
    sidecar_bytes: int
    latency_ns: int
    forward_base_ns: int
    forward_ns_per_token: int
    request: Request
    l3_kv_pages: int
    l3_sidecar_at_pages: frozenset  # pages after which the store holds a Mamba state
    delays: tuple
    jitter: tuple  # (op, low_ns, high_ns)
    arrival_shift_ns: tuple  # (low, high)


def need(obj, key, where):
    if key not in obj:
        raise ScenarioError(f"{where}/{key} is missing")
    return obj[key]


def only(obj, keys, where):
    """Refuses what the model does not cover, rather than simulating something else."""
    extra = sorted(set(obj) - set(keys))
    if extra:
        raise ScenarioError(f"{where}: {', '.join(extra)} not covered by this model")


def load_params(path):
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ScenarioError(f"{path}: {e}") from e
    only(doc, {"name", "description", "incident", "upstream", "seed", "tp", "policy", "scheduler", "storage",
               "collective", "l3", "requests", "delays", "perturbations", "expect"}, "")
    if need(doc, "tp", "") < 2:
        raise ScenarioError("/tp: the model covers a TP group of 2 ranks or more")
    policy, scheduler = need(doc, "policy", ""), need(doc, "scheduler", "")
    only(policy, {"name", "timeout", "page_size", "prefetch_threshold_tokens", "sidecar"}, "/policy")
    if need(policy, "name", "/policy") != "wait_complete" or need(policy, "sidecar", "/policy") is not True:
        raise ScenarioError("/policy: the model covers HiMamba (sidecar: true) under wait_complete only")
    only(scheduler, {"pass_us"}, "/scheduler")
    storage, coll = need(doc, "storage", ""), need(doc, "collective", "")
    only(storage, {"call_latency_us", "read_gbps", "kv_page_bytes", "sidecar_bytes"}, "/storage")
    perturbations = doc.get("perturbations", {})
    only(perturbations, {"jitter", "arrival_us", "note"}, "/perturbations")
    page_tokens = need(policy, "page_size", "/policy")
    request, l3 = load_workload(doc, page_tokens, need(policy, "prefetch_threshold_tokens", "/policy"))
    return Params(
        seed=doc.get("seed", 0),
        tp=doc["tp"],
        pass_ns=round(need(scheduler, "pass_us", "/scheduler") * 1000),
        page_tokens=page_tokens,
        call_latency_ns=round(need(storage, "call_latency_us", "/storage") * 1000),
        read_bytes_per_ns=need(storage, "read_gbps", "/storage"),  # 1 GB/s is 1 byte/ns
        kv_page_bytes=need(storage, "kv_page_bytes", "/storage"),
        sidecar_bytes=need(storage, "sidecar_bytes", "/storage"),
        latency_ns=round(need(coll, "latency_us", "/collective") * 1000),
        forward_base_ns=round(need(coll, "forward_base_us", "/collective") * 1000),
        forward_ns_per_token=need(coll, "forward_ns_per_token", "/collective"),
        request=request,
        l3_kv_pages=l3["kv_pages"],
        l3_sidecar_at_pages=frozenset(l3.get("sidecar_at_pages", ())),
        delays=tuple(load_delay(d, f"/delays/{i}") for i, d in enumerate(doc.get("delays", []))),
        jitter=tuple(load_jitter(j, f"/perturbations/jitter/{i}")
                     for i, j in enumerate(perturbations.get("jitter", []))),
        arrival_shift_ns=tuple(round(us * 1000) for us in perturbations.get("arrival_us", (0, 0))),
    )


def load_workload(doc, page_tokens, threshold_tokens):
    """The one request and the L3 prefix it hits."""
    requests, l3 = need(doc, "requests", ""), need(doc, "l3", "")
    if len(requests) != 1 or len(l3) != 1 or requests[0].get("prefix") != l3[0].get("prefix"):
        raise ScenarioError("/requests, /l3: the model covers one request over one L3 prefix")
    only(requests[0], {"name", "arrival_us", "input_tokens", "prefix"}, "/requests/0")
    only(l3[0], {"prefix", "kv_pages", "sidecar_at_pages"}, "/l3/0")
    r = requests[0]
    input_tokens = need(r, "input_tokens", "/requests/0")
    request = Request(need(r, "name", "/requests/0"), round(need(r, "arrival_us", "/requests/0") * 1000),
                      input_tokens, input_tokens // page_tokens)
    if min(need(l3[0], "kv_pages", "/l3/0"), request.pages) * page_tokens < threshold_tokens:
        raise ScenarioError("/l3/0: a hit below the prefetch threshold is revoked, which the model leaves out")
    return request, l3[0]


def load_delay(rule, where):
    only(rule, {"op", "ranks", "requests", "fixed_us", "note"}, where)
    return DelayRule(need(rule, "op", where), frozenset(rule.get("ranks", ())),
                     frozenset(rule.get("requests", ())), round(need(rule, "fixed_us", where) * 1000))


def load_jitter(rule, where):
    only(rule, {"op", "uniform_us"}, where)
    low_us, high_us = need(rule, "uniform_us", where)
    return need(rule, "op", where), round(low_us * 1000), round(high_us * 1000)


# ---------------------------------------------------------------------------------------------
# The world: clock, collectives, L3, the work ledger


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes."""

    def __init__(self):
        super().__init__()
        self.events_processed = 0

    def step(self):
        super().step()
        self.events_processed += 1


class Entry(typing.NamedTuple):  # a tuple: one is made per member and collective
    rank: int
    op: str
    size: int


class OpenCollective:
    __slots__ = ("entries", "payloads", "done", "mismatched")

    def __init__(self, env, members):
        self.entries = []
        self.payloads = [None] * members  # by rank
        self.done = env.event()
        self.mismatched = False


class Communicator:
    """One process group over every rank of the TP group. Each rank's n-th collective on it is
    sequence n; the collective completes once every member entered it, when its cost has passed
    since the last entry."""

    def __init__(self, world, name):
        self.world = world
        self.name = name
        self.members = world.params.tp
        self.next_seq = [0] * self.members  # by rank
        self.pending = {}  # seq -> OpenCollective

    def enter(self, rank, op, payload):
        world = self.world
        seq = self.next_seq[rank]
        self.next_seq[rank] += 1
        c = self.pending.get(seq)
        if c is None:
            c = self.pending[seq] = OpenCollective(world.env, self.members)
        entry = Entry(rank, op, payload[0] if op == FORWARD else len(payload))  # a forward's size: its tokens
        c.entries.append(entry)
        c.payloads[rank] = payload
        first = c.entries[0]
        if (entry.op, entry.size) != (first.op, first.size):
            c.mismatched = True
            world.collective_mismatch(self.name, seq, c.entries)
        if not c.mismatched and len(c.entries) == self.members:
            del self.pending[seq]
            self.complete(c, op, entry.size)
        return c.done

    def complete(self, c, op, size):
        if op == BROADCAST:
            result = c.payloads[0]  # from the group's lowest rank
        elif op in REDUCERS:
            result = [REDUCERS[op](column) for column in zip(*c.payloads)]
        else:
            result = None  # a forward carries no data back
        # Members that entered earlier already wait on `done`: it succeeds when the cost has passed.
        cost = self.world.collective_cost_ns(op, size)
        self.world.env.timeout(cost, value=result).callbacks.append(lambda timer: c.done.succeed(timer.value))
        self.world.collectives_completed += 1


class L3:
    """Every rank's L3 store as the scenario seeds it (the same on each rank), and what a call costs:
    the call latency plus its bytes over the read bandwidth, the first matching delay rule, and the
    draw of every matching jitter rule."""

    def __init__(self, params, seed):
        self.params = params
        # One stream per rule, as hcsim has: a draw for one op never shifts another op's draws.
        self.jitter = [(op, low, high, random.Random(f"{seed}/jitter/{i}"))
                       for i, (op, low, high) in enumerate(params.jitter)]

    def kv_hit_pages(self, pages):
        """The leading pages of a prefix of `pages` that the store holds."""
        return min(pages, self.params.l3_kv_pages)

    def kv_readable(self, first, count):
        """How many of pages [first, first + count) a read returns: the leading ones held."""
        return max(0, min(first + count, self.params.l3_kv_pages) - first)

    def state_hit_pages(self, kv_hit_pages):
        """batch_exists_v2 with the Mamba state as the trailing page: the longest KV hit that ends
        on a page with its state."""
        return max((p for p in self.params.l3_sidecar_at_pages if p <= kv_hit_pages), default=0)

    def states_readable(self, hit_pages):
        return 1 if hit_pages in self.params.l3_sidecar_at_pages else 0

    def duration_ns(self, op, rank, request, nbytes):
        p = self.params
        ns = p.call_latency_ns + round(nbytes / p.read_bytes_per_ns)
        for rule in p.delays:
            if rule.op != op or (rule.ranks and rank not in rule.ranks):
                continue
            if not rule.requests or request.name in rule.requests:
                ns += rule.fixed_ns
                break
        for op_, low, high, rng in self.jitter:
            if op_ == op:
                ns += rng.randint(low, high)
        return ns


@dataclasses.dataclass(frozen=True)
class Verdict:
    kind: str  # complete, collective_mismatch or starvation (the horizon passed)
    at_ns: int
    detail: str = ""


class World:
    def __init__(self, params, pool_transfer_guard, seed):
        self.params = params
        self.pool_transfer_guard = pool_transfer_guard
        self.env = CountingEnvironment()
        self.l3 = L3(params, seed)
        self.l3_due_ns = 0  # when the last L3 call started completes
        self.tp = Communicator(self, "tp_cpu_group")
        self.prefetch_group = Communicator(self, "prefetch_group")
        self.collectives_completed = 0
        shift = random.Random(f"{seed}/arrivals").randint(*params.arrival_shift_ns)
        self.requests = (params.request,)  # by id
        self.arrivals = collections.deque([(params.request.arrival_ns + shift, 0)])  # (due_ns, id), by due time
        self.owed = {(rank, params.request.name) for rank in range(params.tp)}  # (rank, request) not yet forwarded
        self.schedules = []  # (request, rank, at_ns, extend_tokens)
        self.mismatch = None
        self.completed_ns = None
        self.finished = self.env.event()  # a mismatch, or every request scheduled on every rank
        self.page_copy_ns = round(params.kv_page_bytes / HOST_COPY_BYTES_PER_NS)
        self.load_back_ns_per_page = params.kv_page_bytes / H2D_COPY_BYTES_PER_NS
        self.ranks = [Rank(self, r) for r in range(params.tp)]
        for rank in self.ranks:  # in hcsim's order: rank by rank
            rank.spawn_actors()

    def collective_cost_ns(self, op, size):
        p = self.params
        return p.latency_ns + (p.forward_base_ns + p.forward_ns_per_token * size if op == FORWARD else 0)

    def l3_call(self, op, rank, request, nbytes):
        ns = self.l3.duration_ns(op, rank, request, nbytes)
        self.l3_due_ns = max(self.l3_due_ns, self.env.now + ns)
        return self.env.timeout(ns)

    def take_arrivals(self):
        taken = []
        while self.arrivals and self.arrivals[0][0] <= self.env.now:
            taken.append(self.arrivals.popleft()[1])
        return taken

    def collective_mismatch(self, group, seq, entries):
        if self.mismatch is not None:
            return
        others = ", ".join(f"rank {e.rank} {e.op}({e.size})" for e in entries[1:])
        first = entries[0]
        self.mismatch = Verdict("collective_mismatch", self.env.now,
                                f"{group} seq {seq}: rank {first.rank} entered {first.op}({first.size}), {others}")
        if not self.finished.triggered:
            self.finished.succeed()

    def record_schedule(self, request, rank, extend_tokens):
        self.schedules.append((request, rank, self.env.now, extend_tokens))

    def work_finished(self, rank, request):
        self.owed.discard((rank, request.name))
        if not self.owed and self.completed_ns is None:
            self.completed_ns = self.env.now
            if not self.finished.triggered:
                self.finished.succeed()


# ---------------------------------------------------------------------------------------------
# One rank of the TP group: HiMamba's prefetch lifecycle and its four actors


@dataclasses.dataclass
class PrefetchOp:
    request: Request
    hit_pages: int = 0  # len(hash_value): the group's agreed hit, once the prefetch thread set it
    completed_tokens: int = 0
    state_pages_read: int = 0  # the Mamba sidecar transfer's hit pages
    pool_transfers_done: bool = False
    terminated: bool = False

    def increment(self, tokens):
        """Upstream's locked increment, refused once the scheduler terminated the operation."""
        if self.terminated:
            return False
        self.completed_tokens += tokens
        return True


class HostPath:
    """The rank's host radix tree along the request's prefix, which is all this scenario puts in it:
    HiMamba matches a prefix only up to its deepest node holding a Mamba state."""

    def __init__(self):
        self.kv_pages = 0
        self.state_at_pages = 0

    def match_pages(self):
        return self.state_at_pages

    def insert(self, pages):
        """Returns the pages that are new in the tree."""
        inserted = max(0, pages - self.kv_pages)
        self.kv_pages = max(self.kv_pages, pages)
        return inserted


class Rank:
    def __init__(self, world, rank):
        self.world = world
        self.env = world.env
        self.params = world.params
        self.rank = rank
        self.host = HostPath()
        self.waiting = []  # requests, in arrival order
        self.ongoing = {}  # request name -> PrefetchOp
        self.kv_release_pages = 0  # host pages read beyond what the group kept, for the next drain
        self.load_acks = collections.deque()  # when each load-back's copy completes
        self.prefetch_queue = simpy.Store(self.env)
        self.prefetch_buffer = simpy.Store(self.env)
        self.backup_queue = simpy.Store(self.env)

    def spawn_actors(self):
        for actor in (self.scheduler_loop, self.prefetch_thread, self.io_thread, self.backup_thread):
            self.env.process(actor())

    # --- the scheduler -------------------------------------------------------------------------

    def scheduler_loop(self):
        while True:  # ends with the run: the driver stops stepping at the verdict's bound
            yield from self.recv_requests()
            # writing_check returns before its collective with no write-through backup in flight,
            # and write-through is off in this scenario.
            self.loading_check()
            yield from self.drain_storage_control_queues()
            yield from self.get_new_batch_prefill_and_forward()

    def recv_requests(self):
        """TP rank 0 takes the arrivals and broadcasts them: the counts, then the ids."""
        ids = self.world.take_arrivals() if self.rank == 0 else []
        # [arrivals, aborts]: the scenario has no aborts.
        counts = yield self.world.tp.enter(self.rank, BROADCAST, [len(ids), 0])
        if counts[0] == 0:
            return
        ids = yield self.world.tp.enter(self.rank, BROADCAST, ids or [0] * counts[0])  # the others pass a buffer
        for rid in ids:
            self.add_request(self.world.requests[rid])

    def add_request(self, request):
        """_add_request_to_queue -> prefetch_from_storage: the host tree is empty, so the whole
        request is prefetched from L3."""
        self.waiting.append(request)
        op = PrefetchOp(request)
        self.ongoing[request.name] = op
        self.prefetch_queue.put(op)

    def loading_check(self):
        """Takes the load-back acks whose copy completed on this rank, with no agreement (before #26923)."""
        while self.load_acks and self.load_acks[0] <= self.env.now:
            self.load_acks.popleft()

    def drain_storage_control_queues(self):
        """MIN-agree how many items of each queue every rank can drain, then drain that many. The
        queues, in upstream's order: revokes, L3 backup acks, KV releases. Nothing is revoked here
        (the hit clears the threshold) and nothing backed up (write-through is off)."""
        agreed = yield self.world.tp.enter(self.rank, ALL_REDUCE_MIN, [0, 0, self.kv_release_pages])
        self.kv_release_pages -= agreed[2]

    def get_new_batch_prefill_and_forward(self):
        """The admission walk: a request whose prefetch is still running is skipped. The forward is
        a collective on the batch's token count, so ranks that built different batches launch
        forwards that never match."""
        batch, batch_tokens = [], 0
        for request in list(self.waiting):
            ready = yield from self.check_prefetch_progress(request)
            if not ready:
                continue
            host_hit_pages = self.host.match_pages()  # init_next_round_input: match_prefix again
            extend_tokens = request.input_tokens - host_hit_pages * self.params.page_tokens
            batch.append(request)
            batch_tokens += extend_tokens
            self.world.record_schedule(request, self.rank, extend_tokens)
            if host_hit_pages > 0:
                self.load_back(host_hit_pages)
        if not batch:
            yield self.env.timeout(self.params.pass_ns)
            return
        self.waiting = [r for r in self.waiting if r not in batch]
        yield self.world.tp.enter(self.rank, FORWARD, [batch_tokens])
        for request in batch:
            self.world.work_finished(self.rank, request)

    def check_prefetch_progress(self, request):
        """can_terminate_prefetch inlined, as HiMamba has it: a MAX vote on [cannot terminate,
        terminated], then once the group decided, a MIN on the completed tokens."""
        op = self.ongoing.get(request.name)
        if op is None:
            return True  # a rank-local early return, before any collective
        # wait_complete: done once every agreed KV page is counted (an empty hit is never done).
        can_terminate = op.hit_pages > 0 and op.completed_tokens == op.hit_pages * self.params.page_tokens
        if self.world.pool_transfer_guard and not op.pool_transfers_done:
            can_terminate = False  # #27366: KV done while the sidecar is still read is not done
        vote = [0 if can_terminate else 1, int(op.terminated)]
        vote = yield self.world.tp.enter(self.rank, ALL_REDUCE_MAX, vote)
        decided = vote[0] == 0 or vote[1] == 1  # every rank can terminate, or one already has
        if not decided:
            return False
        op.terminated = True
        agreed = yield self.world.tp.enter(self.rank, ALL_REDUCE_MIN, [op.completed_tokens])
        self.finish_prefetch(op, agreed[0])
        return True

    def finish_prefetch(self, op, min_completed_tokens):
        """Inserts the group's agreed prefix. HiMamba reads mamba_loaded after the MIN from this
        rank's own IO thread: where the sidecar read still runs, the state is not attached, and
        its slot is freed at once (slot ownership is not modelled)."""
        page = self.params.page_tokens
        min_pages = min_completed_tokens // page
        if self.host.insert(min_pages) > 0 and op.state_pages_read >= 1:
            self.host.state_at_pages = min_pages
        self.kv_release_pages += op.completed_tokens // page - min_pages
        del self.ongoing[op.request.name]

    def load_back(self, pages):
        copy_ns = H2D_COPY_LATENCY_NS + round(pages * self.world.load_back_ns_per_page)
        self.load_acks.append(self.env.now + copy_ns)

    # --- the prefetch, IO and backup threads ---------------------------------------------------

    def prefetch_thread(self):
        """The L3 hit query, then the group's MIN of the hit on the prefetch group."""
        while True:
            op = yield self.prefetch_queue.get()
            kv_hit = self.world.l3.kv_hit_pages(op.request.pages)
            yield self.world.l3_call("hit_query", self.rank, op.request, 0)
            hit_tokens = min(kv_hit, self.world.l3.state_hit_pages(kv_hit)) * self.params.page_tokens
            agreed = yield self.world.prefetch_group.enter(self.rank, ALL_REDUCE_MIN, [hit_tokens])
            op.hit_pages = agreed[0] // self.params.page_tokens
            self.prefetch_buffer.put(op)

    def io_thread(self):
        while True:
            op = yield self.prefetch_buffer.get()
            yield from self.page_transfer(op)
            op.pool_transfers_done = True  # unconditionally, on every path
            self.kv_release_pages += op.hit_pages - op.completed_tokens // self.params.page_tokens

    def page_transfer(self, op):
        """KV pages in batches, each page copied into the host pool and then counted; after every KV
        page arrived, the Mamba state (#26881), even if the scheduler terminated the operation
        meanwhile."""
        page = self.params.page_tokens
        for first in range(0, op.hit_pages, STORAGE_BATCH_PAGES):
            count = min(STORAGE_BATCH_PAGES, op.hit_pages - first)
            read = self.world.l3.kv_readable(first, count)
            yield self.world.l3_call("kv_get", self.rank, op.request, read * self.params.kv_page_bytes)
            before = op.completed_tokens
            for _ in range(read):
                yield self.env.timeout(self.world.page_copy_ns)
                if not op.increment(page):
                    break
            if op.completed_tokens != before + count * page:
                return  # terminated between two pages: no sidecar phase
        read = self.world.l3.states_readable(op.hit_pages)
        yield self.world.l3_call("sidecar_get", self.rank, op.request, read * self.params.sidecar_bytes)
        op.state_pages_read = read

    def backup_thread(self):
        """backup_thread_func: waits on the backup queue, which only write-through feeds; with it
        off, it waits for the whole run, as hcsim's does."""
        yield self.backup_queue.get()


# ---------------------------------------------------------------------------------------------
# Runs, timing and output


@dataclasses.dataclass(frozen=True)
class RunResult:
    verdict: Verdict
    collectives: int
    events: int
    end_ns: int
    schedules: tuple


def run_once(params, pool_transfer_guard, seed):
    world = World(params, pool_transfer_guard, seed)
    env = world.env
    env.run(until=env.any_of([world.finished, env.timeout(HORIZON_NS)]))
    if world.mismatch is not None:
        end_ns = world.mismatch.at_ns + SETTLE_NS
    elif world.completed_ns is not None:
        end_ns = max(env.now, world.l3_due_ns) + QUIESCE_NS
    else:
        end_ns = env.now  # the horizon
    # hcsim also runs the events due at the bound itself, where SimPy stops before them; times are
    # whole nanoseconds, so one more covers them.
    env.run(until=end_ns + 1)
    if world.mismatch is not None:  # also one found while draining: hcsim checks it first
        verdict = world.mismatch
    elif world.completed_ns is not None:
        verdict = Verdict("complete", world.completed_ns)
    else:
        verdict = Verdict("starvation", end_ns, "the horizon passed with requests still owed a schedule")
    return RunResult(verdict, world.collectives_completed, env.events_processed, end_ns, tuple(world.schedules))


def measure(params, guard, first_seed, runs, batches):
    """Runs `runs` seeds from `first_seed` in `batches` batches; returns the results and the
    median over the batches of CPU milliseconds per run."""
    run_once(params, guard, first_seed)  # warm-up, untimed: the first run pays for lazy setup
    results, per_run_ms = [], []
    sizes = [runs // batches + (1 if b < runs % batches else 0) for b in range(batches)]
    seed = first_seed
    for size in sizes:
        start = time.process_time()
        results.extend(run_once(params, guard, s) for s in range(seed, seed + size))
        per_run_ms.append((time.process_time() - start) * 1000 / size)
        seed += size
    return results, statistics.median(per_run_ms)


def ms(ns):
    return f"{ns / 1e6:.3f} ms"


def verdict_line(results):
    """One verdict when every run agrees; else how many runs got each."""
    tally = collections.Counter(r.verdict.kind for r in results)
    if len(tally) == 1:
        return next(iter(tally))
    return ", ".join(f"{kind} {n}" for kind, n in tally.most_common())


def mean(values, digits=1):
    """The value of a single run (an int stays one); else the mean, rounded."""
    values = list(values)
    return round(values[0] if len(values) == 1 else statistics.fmean(values), digits)


def print_one(variant, seed, r, cpu_ms):
    v = r.verdict
    print(f"variant    {variant}, seed {seed}")
    print(f"verdict    {v.kind} at {ms(v.at_ns)}")
    if v.detail:
        print(f"           {v.detail}")
    by_request = collections.defaultdict(list)
    for request, rank, at_ns, extend in r.schedules:
        by_request[request.name].append(f"rank {rank} at {ms(at_ns)} (extend {extend} tokens)")
    for name, lines in by_request.items():
        print(f"requests   {name}: {', '.join(lines)}")
    print(f"run        {r.collectives} collectives, {r.events} SimPy events, ended at {ms(r.end_ns)},"
          f" {cpu_ms:.1f} ms CPU")


def print_many(variant, seed, results, cpu_ms, batches):
    print(f"variant    {variant}, seeds {seed}..{seed + len(results) - 1}")
    print(f"verdicts   {verdict_line(results)}")
    at = [r.verdict.at_ns for r in results]
    print(f"at         {ms(min(at))} to {ms(max(at))}")
    print(f"per run    {mean(r.collectives for r in results)} collectives, {mean(r.events for r in results)}"
          f" SimPy events, {cpu_ms:.2f} ms CPU (median of {batches} batches, time.process_time)")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="A SimPy model of hcsim's seed scenario (himamba-sidecar-lag), to compare the CPU cost\n"
                    "per run with `hcsim run`. One run prints the verdict, the collectives completed and the\n"
                    "SimPy events processed; --runs N runs N seeds and reports the CPU time per run.",
        epilog="examples:\n"
               "  bench/simpy_seed.py --variant pre-fix                 # collective_mismatch at 15.980 ms\n"
               "  bench/simpy_seed.py --variant seed-fix                # complete at 505.670 ms\n"
               "  bench/simpy_seed.py --variant seed-fix --runs 200 --json\n"
               "compare: ./build/hcsim run scenarios/himamba-sidecar-lag.json --preset seed-fix --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", required=True, choices=sorted(VARIANTS),
                        help="pre-fix: upstream before sgl-project/sglang#27366 (hangs); seed-fix: with its guard")
    parser.add_argument("--seed", type=int, metavar="N", help="the first seed (default: the scenario's)")
    parser.add_argument("--runs", type=int, default=1, metavar="N",
                        help="seeds to run (default 1); the CPU time per run is the median over up to 5 "
                             "batches, after one untimed warm-up run")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--scenario", type=Path, default=SCENARIO, metavar="PATH",
                        help="a scenario of the seed's shape, e.g. with another delay (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.seed is not None and args.seed < 0:
        parser.error("--seed must be 0 or more")
    return args


def main(argv):
    args = parse_args(argv)
    try:
        params = load_params(args.scenario)
    except ScenarioError as e:
        sys.exit(f"simpy_seed.py: {e}")
    seed = params.seed if args.seed is None else args.seed
    guard = VARIANTS[args.variant]
    batches = min(5, args.runs)
    results, cpu_ms = measure(params, guard, seed, args.runs, batches)
    if args.json:
        print(json.dumps({"variant": args.variant, "runs": args.runs, "seed": seed,
                          "cpu_ms_per_run": round(cpu_ms, 3), "verdict": verdict_line(results),
                          "verdict_at_ms": mean((r.verdict.at_ns / 1e6 for r in results), 3),
                          "collectives": mean(r.collectives for r in results),
                          "events_per_run": mean(r.events for r in results)}))
    elif args.runs == 1:
        print_one(args.variant, seed, results[0], cpu_ms)
    else:
        print_many(args.variant, seed, results, cpu_ms, batches)


if __name__ == "__main__":
    main(sys.argv[1:])
