//! The random-forest forecaster: smartcore's `RandomForestRegressor` (linfa 0.8 ships no
//! regression forest) wrapped to speak linfa's `Fit` / `Predict` on `Dataset`s like the rest,
//! with the upper quantile from the residuals on the newest rows of a first fit that did not
//! see them (out-of-bag residuals would need the forest to keep every tree's sample: ~17 MiB
//! per stored model at 43,200 rows). Serializable, so a model version is restored exactly.

use linfa::prelude::*;
use linfa::DatasetBase;
use ndarray::{Array1, Array2, ArrayBase, Data, Ix2};
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::{RandomForestRegressor, RandomForestRegressorParameters};
use smartcore::linalg::basic::matrix::DenseMatrix;

use super::features::{FeatureSpec, Series};
use super::forecast::{FitError, Forecast, Forecaster, quantile};

/// How the forest is grown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    pub trees: usize,
    pub max_depth: u16,
    pub min_samples_leaf: usize,
    /// The quantile of the out-of-bag residuals added for the upper forecast.
    pub q: f64,
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams { trees: 50, max_depth: 12, min_samples_leaf: 5, q: 0.9, seed: 7 }
    }
}

type Inner = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// A fitted forest and the margin of its upper quantile.
#[derive(Debug, Serialize, Deserialize)]
pub struct FittedForest {
    forest: Inner,
    pub margin: f64,
    width: usize,
}

fn matrix<D: Data<Elem = f64>>(x: &ArrayBase<D, Ix2>) -> Result<DenseMatrix<f64>, linfa::Error> {
    let rows: Vec<Vec<f64>> = x.outer_iter().map(|r| r.to_vec()).collect();
    DenseMatrix::from_2d_vec(&rows).map_err(|e| linfa::Error::Parameters(format!("feature matrix: {e}")))
}

impl<D: Data<Elem = f64>> Fit<ArrayBase<D, Ix2>, Array1<f64>, linfa::Error> for ForestParams {
    type Object = FittedForest;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, Array1<f64>>) -> Result<FittedForest, linfa::Error> {
        if dataset.nsamples() < 2 * self.min_samples_leaf.max(1) {
            return Err(linfa::Error::NotEnoughSamples);
        }
        let records = dataset.records();
        let y: Vec<f64> = dataset.targets().to_vec();
        let params = RandomForestRegressorParameters::default()
            .with_n_trees(self.trees)
            .with_max_depth(self.max_depth)
            .with_min_samples_leaf(self.min_samples_leaf)
            .with_seed(self.seed);
        let grow = |x: &DenseMatrix<f64>, y: &Vec<f64>| Inner::fit(x, y, params.clone()).map_err(|e| linfa::Error::Parameters(format!("forest: {e}")));
        // The upper margin: residuals on the newest 15 % from a forest grown on the rest.
        let cut = y.len() * 85 / 100;
        let early = grow(&matrix(&records.slice(ndarray::s![..cut, ..]))?, &y[..cut].to_vec())?;
        let predicted = early.predict(&matrix(&records.slice(ndarray::s![cut.., ..]))?).map_err(|e| linfa::Error::Parameters(format!("forest: {e}")))?;
        let mut residuals: Vec<f64> = y[cut..].iter().zip(&predicted).map(|(a, p)| a - p).collect();
        let margin = quantile(&mut residuals, self.q).max(0.0);
        let forest = grow(&matrix(records)?, &y)?;
        Ok(FittedForest { forest, margin, width: dataset.nfeatures() })
    }
}

impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<f64>> for FittedForest {
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<f64>) {
        assert_eq!(x.ncols(), self.width, "the forest was fitted on {} features", self.width);
        let predicted = matrix(x).ok().and_then(|m| self.forest.predict(&m).ok()).unwrap_or_else(|| vec![f64::NAN; x.nrows()]);
        for (slot, v) in y.iter_mut().zip(predicted) {
            *slot = v;
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<f64> {
        Array1::zeros(x.nrows())
    }
}

/// The forest as a [`Forecaster`] over a feature set.
#[derive(Serialize, Deserialize)]
pub struct ForestForecaster {
    pub features: FeatureSpec,
    pub params: ForestParams,
    pub fitted: Option<FittedForest>,
}

impl ForestForecaster {
    pub fn new(features: FeatureSpec, params: ForestParams) -> ForestForecaster {
        ForestForecaster { features, params, fitted: None }
    }
}

/// Fits the forest on the rows of `range` that have all their features and a target.
fn fit_rows(params: &ForestParams, features: &FeatureSpec, series: &Series, range: std::ops::Range<usize>) -> Result<FittedForest, FitError> {
    let (x, y, _) = features.training_set(series, range);
    if y.len() < 30 {
        return Err(FitError(format!("random forest: {} usable points in the window, 30 needed (gaps and the week of lags count against it)", y.len())));
    }
    params.fit(&Dataset::new(x, y)).map_err(|e| FitError(format!("random forest: {e}")))
}

impl Forecaster for ForestForecaster {
    fn name(&self) -> &str {
        "random-forest"
    }

    fn horizon(&self) -> usize {
        self.features.horizon
    }

    fn fit(&mut self, series: &Series, range: std::ops::Range<usize>) -> Result<(), FitError> {
        self.fitted = Some(fit_rows(&self.params, &self.features, series, range)?);
        Ok(())
    }

    fn predict(&self, series: &Series, at: usize) -> Option<Forecast> {
        let fitted = self.fitted.as_ref()?;
        let row = self.features.row(series, at)?;
        let x = Array2::from_shape_vec((1, row.len()), row).ok()?;
        let mean = fitted.predict(&x)[0];
        mean.is_finite().then_some(Forecast { mean, upper: mean + fitted.margin })
    }

    fn encode(&self) -> Result<Vec<u8>, String> {
        super::stored::encode(&super::stored::StoredRef::RandomForest(self))
    }
}
