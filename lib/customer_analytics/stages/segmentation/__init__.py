"""
Customer segmentation with MLlib KMeans (SPEC section 4).

Method
------
The configured features of ``customer_features`` go through one :class:`pyspark.ml.Pipeline`,
so a fitted :class:`~pyspark.ml.PipelineModel` scores new data identically
(:mod:`.preprocessing`):

1. ``SQLTransformer``: each feature cast to double (``_num_<f>``).
2. ``Imputer`` (strategy from configuration): nulls -> ``_imp_<f>`` (e.g. ``mtbp_days`` is null
   for one-visit customers).
3. ``SQLTransformer``: ``log1p(greatest(x, 0))`` of the skewed columns, identity for the others
   (``_x_<f>``). Skewed columns are fixed by a rule, not by the data: the non-negative counts,
   amounts and durations listed in ``SKEWED_FEATURES`` (visits, spends, baskets,
   ``mtbp_days``, ``recency_days``...); rates, scores and trends (``return_rate``,
   ``spend_trend``, ``p_alive``) are left as they are. Negative values are clipped at 0.
4. ``VectorAssembler`` then ``StandardScaler`` (mean 0, standard deviation 1). A constant
   feature has standard deviation 0 and is scaled to 0 everywhere: it is kept but has no
   influence on the clusters (documented fallback, not an error).
5. ``ElementwiseProduct`` by ``segmentation.feature_weights`` (1.0 for a feature not listed):
   a weight ``w`` makes a feature count ``w**2`` times in the squared distances. Inside the
   pipeline, so a saved model applies its weights when it scores.
6. ``KMeans(seed=seed, solver="row")`` writing ``cluster`` (int), the best of ``n_init`` starts
   (:mod:`.kmeans`).

K is chosen by a sweep (:mod:`.k_selection`: silhouette of ``ClusteringEvaluator``, squared
Euclidean, and the KMeans training cost per K; the preprocessing is fitted once on the sweep's
data, then KMeans per K). With a fixed ``k`` the sweep records that one K only.

Outputs
-------
- ``customer_segments`` (:mod:`.scoring`): ``customer_id``, ``cluster``, ``segment_name``,
  ``distance`` (Euclidean distance to the cluster's centroid in the scaled feature space).
- ``segment_profiles`` (:mod:`.profiles`) in *long* format: one row per (cluster, feature) with
  ``cluster``, ``segment_name``, ``action``, ``size``, ``share``, ``feature``, ``mean``,
  ``median`` (``percentile_approx``), ``overall_mean`` and ``index`` = mean / overall mean
  (null when the overall mean is 0). Raw (not imputed, not logged) values; nulls are ignored.
  Profiled are the clustered features, then the numeric columns the naming rules test,
  ``total_spend``, and ``p_alive`` and ``ltv_predicted`` when the job joined ``customer_clv``
  on: a rule may name clusters by a column that is not clustered on.
- ``feature_importance`` (:mod:`.profiles`): per feature, ``importance`` = between-cluster
  variance / total variance of the scaled feature (the R-squared of the clustering on that
  feature, 0..1, null for a constant feature) and its ``rank`` (1 = separates the clusters
  best).

Segments are named by rules (:mod:`.naming`) and keep their ids across refits
(:mod:`.matching`). The stage itself, :func:`fit`, :func:`refit` and :func:`score`, is in
:mod:`.model`.
"""

from customer_analytics.stages.segmentation.model import (
    SegmentationResult,
    check_input,
    customers_needed,
    fit,
    refit,
    score,
)

__all__ = ["SegmentationResult", "check_input", "customers_needed", "fit", "refit", "score"]
