//! The linear baseline: ordinary least squares (`linfa-linear`) on the same features as the
//! forest, with the upper quantile from its residuals on the fitted window.

use linfa::prelude::*;
use linfa_linear::{FittedLinearRegression, LinearRegression};
use ndarray::Array2;

use super::features::{FeatureSpec, Series};
use super::forecast::{FitError, Forecast, Forecaster, quantile};

pub struct LinearForecaster {
    pub features: FeatureSpec,
    q: f64,
    fitted: Option<(FittedLinearRegression<f64>, f64)>,
}

impl LinearForecaster {
    pub fn new(features: FeatureSpec, q: f64) -> LinearForecaster {
        LinearForecaster { features, q, fitted: None }
    }
}

impl Forecaster for LinearForecaster {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn horizon(&self) -> usize {
        self.features.horizon
    }

    fn fit(&mut self, series: &Series, range: std::ops::Range<usize>) -> Result<(), FitError> {
        let model: FittedLinearRegression<f64> = super::forest::fit_rows(&LinearRegression::new(), &self.features, series, range.clone(), "linear model")?;
        let (x, y, _) = self.features.training_set(series, range);
        let predicted = model.predict(&x);
        let mut residuals: Vec<f64> = y.iter().zip(predicted.iter()).map(|(a, p)| a - p).collect();
        self.fitted = Some((model, quantile(&mut residuals, self.q).max(0.0)));
        Ok(())
    }

    fn predict(&self, series: &Series, at: usize) -> Option<Forecast> {
        let (model, margin) = self.fitted.as_ref()?;
        let row = self.features.row(series, at)?;
        let x = Array2::from_shape_vec((1, row.len()), row).ok()?;
        let mean = model.predict(&x)[0];
        mean.is_finite().then_some(Forecast { mean, upper: mean + margin })
    }
}
