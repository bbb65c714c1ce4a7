"""Write Parquet, read it back with column selection, filter by an expression, transform with pandas."""

from __future__ import annotations

import tempfile

import pandas as pd

import ember as ray

ray.init(num_cpus=2)

with tempfile.TemporaryDirectory() as out:
    ray.data.range(200, override_num_blocks=4).map(
        lambda row: {"id": row["id"], "group": row["id"] % 4, "value": row["id"] * 1.5}
    ).write_parquet(out)

    ds = ray.data.read_parquet(out, columns=["group", "value"]).filter(
        expr="group == 1"
    )

    def normalize(df: pd.DataFrame) -> pd.DataFrame:
        df["value"] = df["value"] / 10
        return df

    result = ds.map_batches(normalize, batch_format="pandas").to_pandas()
    print(
        "RESULT",
        len(result),
        sorted(result.columns),
        round(float(result["value"].sum()), 6),
    )
ray.shutdown()
