"""Custom Triton metrics of the embedding stages, their adapter banks, and the fused models.

They are served on Triton's metrics port (`/metrics`) next to the nv_* family, labelled by the model's name.
The banks count (loads, evictions, load times); `record` turns what changed since the last call into metric
updates, so the numpy and the torch stage and the fused models share this one module. The fused models add what
their forward did (`FusedMetrics`): dense passes and the rows of each output copied back, which is how a test
against the real server proves that a CLS-only request never runs the dense pass nor moves patch tokens.
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


FUSED_FAMILIES = {
    "dense_passes": ("tipsv2_dense_passes_total", "Batches that ran the dense (MaskCLIP value path) pass", "COUNTER"),
    "dense_rows": ("tipsv2_dense_rows_total", "Rows the dense pass ran for", "COUNTER"),
    "compiled": ("tipsv2_trunk_compiled", "1 while the trunk runs compiled, 0 while it runs eager", "GAUGE"),
}
OUTPUT_ROWS = ("tipsv2_output_rows_total", "Rows of each output copied back to the host", "COUNTER")


class StageMetrics:
    def __init__(self, pb_utils, model_name, bank, stage_timing=True):
        self.bank = bank
        labels = {"model": model_name}
        # The families must outlive their metrics (Triton refuses updates otherwise), so both are kept.
        self._families = {}
        self._seen_evictions = 0
        families = {k: v for k, v in FAMILIES.items() if stage_timing or k != "stage_seconds"}
        for attr, (name, description, kind) in families.items():
            self._families[attr] = family = _family(pb_utils, name, description, kind)
            if kind == "HISTOGRAM":
                setattr(self, attr, family.Metric(labels=labels, buckets=LOAD_BUCKETS))
            else:
                setattr(self, attr, family.Metric(labels=labels))
        self.stage_seconds = getattr(self, "stage_seconds", None)
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
        if self.stage_seconds is not None:
            _add(self.stage_seconds, time.perf_counter() - started)


class FusedMetrics:
    """The bank's metrics plus what a fused model's forward did (`tipsv2_fused_torch.Counters`)."""

    def __init__(self, pb_utils, model_name, fused):
        self.fused = fused
        self.stage = StageMetrics(pb_utils, model_name, fused.bank, stage_timing=False)
        labels = {"model": model_name}
        self._families = {attr: _family(pb_utils, *spec) for attr, spec in FUSED_FAMILIES.items()}
        self.metrics = {attr: family.Metric(labels=labels) for attr, family in self._families.items()}
        self._families["output_rows"] = outputs = _family(pb_utils, *OUTPUT_ROWS)
        self.output_rows = {name: outputs.Metric(labels={**labels, "output": name}) for name in fused.modality.outputs}
        self.metrics["compiled"].set(1 if fused.trunk.compiled else 0)
        self._seen = {"dense_passes": 0, "dense_rows": 0, "adapted_rows": 0, "outputs": {}}

    def record(self):
        counters, seen = self.fused.counters, self._seen
        self.stage.record(None, counters.adapted_rows - seen["adapted_rows"])
        for attr in ("dense_passes", "dense_rows"):
            _add(self.metrics[attr], getattr(counters, attr) - seen[attr])
            seen[attr] = getattr(counters, attr)
        seen["adapted_rows"] = counters.adapted_rows
        for name, metric in self.output_rows.items():
            _add(metric, counters.output_rows[name] - seen["outputs"].get(name, 0))
            seen["outputs"][name] = counters.output_rows[name]


def _family(pb_utils, name, description, kind):
    return pb_utils.MetricFamily(name=name, description=description, kind=getattr(pb_utils.MetricFamily, kind))


def _add(metric, value):
    if value > 0:
        metric.increment(value)
