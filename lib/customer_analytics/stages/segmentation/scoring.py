"""
Scoring customers with a fitted segmentation model: each customer's cluster, published
segment id and distance to the cluster's centre, and the ``customer_segments`` table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from customer_analytics.core import columns as C

#: Working column of :func:`assign_clusters`: the scaled vector as an array.
_VALUES = "_scaled_values"


def centroid_distance(centers: Sequence[Sequence[float]], values: Column) -> Column:
    """
    Euclidean distance of each row's scaled ``values`` (an array column) to its cluster's
    centre (a Column).

    One difference per dimension, each centre coordinate picked from an array literal by
    ``cluster``: plain arithmetic that Spark compiles, where ``zip_with`` and ``aggregate``
    would run a lambda per value.
    """
    position = F.col(C.CLUSTER) + 1
    squares = []
    for dimension in range(len(centers[0])):
        coordinate = F.element_at(F.array(*[F.lit(float(c[dimension])) for c in centers]), position)
        difference = F.get(values, dimension) - coordinate
        squares.append(difference * difference)
    return F.sqrt(sum(squares[1:], squares[0]))


def assign_clusters(
    model: PipelineModel, customer_features: DataFrame, cluster_ids: Mapping[int, int] | None = None
) -> DataFrame:
    """
    Score customers with a fitted model.

    Parameters
    ----------
    cluster_ids : mapping, optional
        KMeans cluster index -> the segment id to publish (:attr:`SavedModel.cluster_ids`);
        by default the index itself.

    Returns
    -------
    DataFrame
        The input columns plus ``cluster`` (int, the segment id), ``distance`` (double, to the
        cluster's centre) and ``_scaled``.
    """
    kmeans = model.stages[-1]
    out = model.transform(customer_features).withColumn(_VALUES, vector_to_array(C.SCALED))
    out = out.withColumn(C.DISTANCE, centroid_distance(kmeans.clusterCenters(), F.col(_VALUES)))
    if cluster_ids and any(i != c for i, c in cluster_ids.items()):
        ids = F.array(*[F.lit(int(cluster_ids[i])) for i in range(len(cluster_ids))])
        out = out.withColumn(C.CLUSTER, F.element_at(ids, F.col(C.CLUSTER) + 1))
    keep = [*customer_features.columns, C.CLUSTER, C.DISTANCE, C.SCALED]
    return out.select(*keep)


def customer_segments(scored: DataFrame, names: DataFrame) -> DataFrame:
    """
    Table ``customer_segments``: ``customer_id``, ``as_of``, ``cluster``, ``segment_name``,
    ``distance``.
    """
    return scored.join(F.broadcast(names), C.CLUSTER).select(
        C.CUSTOMER_ID, C.AS_OF, C.CLUSTER, C.SEGMENT_NAME, C.DISTANCE
    )
