"""Custom Triton metrics of the embedding stages and their adapter banks.

They are served on Triton's metrics port (`/metrics`) next to the nv_* family, labelled by the stage's model name.
The banks count (loads, evictions, load times); `record` turns what changed since the last call into metric
updates, so the numpy and the torch stage share this one module.
"""

import time

LOAD_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]
FAMILIES = {
    "loads": ("tipsv2_adapter_loads_total", "Adapters loaded into the bank from the adapter store", "COUNTER"),
    "evictions": ("tipsv2_adapter_evictions_total", "Adapters evicted from the bank (LRU)", "COUNTER"),
    "load_seconds": ("tipsv2_adapter_load_seconds_total", "Time spent loading adapters from the store", "COUNTER"),
    "load_duration": ("tipsv2_adapter_load_duration_seconds", "Time to load one adapter from the store", "HISTOGRAM"),
    "resident": ("tipsv2_adapter_bank_size", "Adapters resident in the bank", "GAUGE"),
    "adapted_rows": ("tipsv2_adapter_rows_total", "Batch rows run with an adapter", "COUNTER"),
    "stage_seconds": ("tipsv2_embed_stage_seconds_total", "Time spent in the embedding stage", "COUNTER"),
}


class StageMetrics:
    def __init__(self, pb_utils, model_name, bank):
        self.bank = bank
        labels = {"model": model_name}
        # The families must outlive their metrics (Triton refuses updates otherwise), so both are kept.
        self._families = {}
        self._seen_evictions = 0
        for attr, (name, description, kind) in FAMILIES.items():
            family = pb_utils.MetricFamily(
                name=name, description=description, kind=getattr(pb_utils.MetricFamily, kind)
            )
            self._families[attr] = family
            if kind == "HISTOGRAM":
                setattr(self, attr, family.Metric(labels=labels, buckets=LOAD_BUCKETS))
            else:
                setattr(self, attr, family.Metric(labels=labels))
        self.resident.set(0)

    def record(self, started, adapted_rows):
        """Publishes what the bank did since the last call, and the stage's time since `started` (perf_counter)."""
        stats = self.bank.stats
        times = stats.drain_load_times()
        for seconds in times:
            self.load_duration.observe(seconds)
        _add(self.loads, len(times))
        _add(self.load_seconds, sum(times))
        _add(self.evictions, stats.evictions - self._seen_evictions)
        self._seen_evictions = stats.evictions
        self.resident.set(len(self.bank))
        _add(self.adapted_rows, adapted_rows)
        _add(self.stage_seconds, time.perf_counter() - started)


def _add(metric, value):
    if value > 0:
        metric.increment(value)
