"""Type-checks dashboard JSON against Grafana's own schema types (`@grafana/schema`, the TypeScript types Grafana's
frontend is built with), through `tsc`: the dashboard model, and each panel's `options` and custom field config
against the types of its plugin (timeseries, stat). No Grafana server can run here; this is the strictest check
obtainable offline. tsc and the types come from npm (scripts/install_tools.sh, tests/deploy/grafana/package-lock.json).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.deploy.tools import tool

GRAFANA_SCHEMA_LOCK = Path(__file__).parent / "grafana" / "package-lock.json"
PANEL_CFG = "@grafana/schema/dist/esm/raw/composable/{0}/panelcfg/x/{1}PanelCfg_types.gen"

# JSON spells Grafana's string enums by their values: `Json<T>` is T with every string enum replaced by the union of
# its values (arrays and objects mapped through, optional fields kept optional).
PRELUDE = f"""\
import type {{ Dashboard, FieldConfigSource, Panel, RowPanel }} from "@grafana/schema";
import type * as timeseries from "{PANEL_CFG.format("timeseries", "TimeSeries")}";
import type * as stat from "{PANEL_CFG.format("stat", "Stat")}";

type Json<T> = T extends string
  ? `${{T}}`
  : T extends readonly (infer U)[]
    ? Json<U>[]
    : T extends object
      ? {{ [K in keyof T]: Json<T[K]> }}
      : T;
type PluginPanel<Kind extends string, Options, Custom> = Json<Omit<Panel, "type" | "options" | "fieldConfig">> & {{
  type: Kind;
  options: Json<Options>;
  fieldConfig: Json<FieldConfigSource<Custom>>;
}};
type TypedPanel =
  | PluginPanel<"timeseries", timeseries.Options, timeseries.FieldConfig>
  | PluginPanel<"stat", stat.Options, Record<string, unknown>>
  | Json<RowPanel>;
type TypedDashboard = Json<Omit<Dashboard, "panels">> & {{ panels: TypedPanel[] }};
"""


def typescript_module(dashboard: dict[str, Any]) -> str:
    """A module that compiles only if `dashboard` is a valid Grafana dashboard with fully typed panels."""
    return (
        PRELUDE
        + f"\nexport const dashboard: TypedDashboard = {json.dumps(dashboard, indent=2)};\n"
        + "export const asGrafanaSees: Json<Dashboard> = dashboard;\n"
    )


def check_dashboards(dashboards: dict[str, dict[str, Any]], workdir: Path) -> subprocess.CompletedProcess[str]:
    """Runs tsc (strict, exact optional properties) over one module per dashboard; returns its result."""
    tsc = Path(tool("tsc")).resolve()  # node_modules/typescript/bin/tsc
    node_modules = tsc.parents[2]
    (workdir / "node_modules").symlink_to(node_modules, target_is_directory=True)
    files = []
    for name, dashboard in dashboards.items():
        path = workdir / f"{name}.ts"
        path.write_text(typescript_module(dashboard))
        files.append(path.name)
    options = ["--noEmit", "--strict", "--exactOptionalPropertyTypes", "--target", "es2022"]
    options += ["--module", "commonjs", "--moduleResolution", "node10"]
    return subprocess.run(
        [str(tsc), *options, *files], cwd=workdir, capture_output=True, text=True, check=False, timeout=300
    )
