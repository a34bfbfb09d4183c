#!/usr/bin/env bash
# Set up .venv, generate sample data if there is none, and run the whole pipeline in local mode.
#   bash scripts/run_pipeline.sh                       # default: 100,000 generated transactions
#   TRANSACTIONS=2406316 bash scripts/run_pipeline.sh  # the seed's size
#   bash scripts/run_pipeline.sh --set source.path=my_export.csv   # your own data
source "$(dirname "$0")/_env.sh" spark
DATA_DIR="${DATA_DIR:-data/generated}"
if [ ! -d "$DATA_DIR/transactions" ]; then
  echo "== generating ${TRANSACTIONS:-100000} transactions into $DATA_DIR"
  .venv/bin/python scripts/generate_data.py --transactions "${TRANSACTIONS:-100000}" \
    --output "$DATA_DIR"
fi
# The generated data imitates the seed's, whose 2021 is incomplete: on it (and only on it)
# 2021 is left out of every model. Your own data (--set source.path=...) keeps every date.
generated=(--set "source.exclude_periods=[{start: 2021-01-01, end: 2021-12-31, reason: incomplete_2021}]")
if printf '%s\n' "$@" | grep -q '^source\.path='; then generated=(); fi
echo "== running the pipeline"
.venv/bin/customer-analytics pipeline --conf "${CONF:-conf/local.yaml}" \
  --set "source.path=$DATA_DIR/transactions" "${generated[@]}" "$@"
echo "== tables: $(pwd)/warehouse (Delta; open with deltalake.DeltaTable, DuckDB or Spark)"
