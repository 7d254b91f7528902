"""Custom Triton metrics of the adapter banks (exported on Triton's metrics port next to the nv_* family)."""

import time

FAMILIES = {
    "loads": ("tipsv2_adapter_loads_total", "Adapters loaded into the bank", "COUNTER"),
    "evictions": ("tipsv2_adapter_evictions_total", "Adapters evicted from the bank (LRU)", "COUNTER"),
    "load_seconds": ("tipsv2_adapter_load_seconds_total", "Time spent loading adapters from the store", "COUNTER"),
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
        for attr, (name, description, kind) in FAMILIES.items():
            family = pb_utils.MetricFamily(
                name=name, description=description, kind=getattr(pb_utils.MetricFamily, kind)
            )
            self._families[attr] = family
            setattr(self, attr, family.Metric(labels=labels))

    def apply(self, x, adapter_ids):
        started = time.perf_counter()
        loads, evictions, load_time = self.bank.loads, self.bank.evictions, sum(self.bank.load_seconds)
        out = self.bank.apply(x, adapter_ids)
        _add(self.loads, self.bank.loads - loads)
        _add(self.evictions, self.bank.evictions - evictions)
        _add(self.load_seconds, sum(self.bank.load_seconds) - load_time)
        self.resident.set(len(self.bank))
        _add(self.adapted_rows, sum(1 for a in adapter_ids if a))
        _add(self.stage_seconds, time.perf_counter() - started)
        return out


def _add(metric, value):
    if value > 0:
        metric.increment(value)
