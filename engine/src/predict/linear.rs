//! The linear baseline: ordinary least squares (`linfa-linear`) on the same features as the
//! forest, standardized (and constant columns dropped) so lags of one series, which are
//! nearly collinear, still solve; the upper quantile from its residuals on the fitted window.

use linfa::prelude::*;
use linfa_linear::{FittedLinearRegression, LinearRegression};
use ndarray::{Array1, Array2, Axis};

use super::features::{FeatureSpec, Series};
use super::forecast::{FitError, Forecast, Forecaster, quantile};

/// Per column: mean and standard deviation on the training rows; `None` for a constant column.
#[derive(serde::Serialize, serde::Deserialize)]
struct Scale(Vec<Option<(f64, f64)>>);

impl Scale {
    fn of(x: &Array2<f64>) -> Scale {
        Scale(
            x.axis_iter(Axis(1))
                .map(|c| {
                    let mean = c.mean().unwrap_or(0.0);
                    let sd = c.std(0.0);
                    (sd > 1e-9 * mean.abs().max(1.0)).then_some((mean, sd))
                })
                .collect(),
        )
    }

    fn apply(&self, x: &Array2<f64>) -> Array2<f64> {
        let cols: Vec<Array1<f64>> = self.0.iter().enumerate().filter_map(|(i, s)| s.map(|(m, sd)| x.column(i).mapv(|v| (v - m) / sd))).collect();
        let views: Vec<_> = cols.iter().map(|c| c.view().insert_axis(Axis(1))).collect();
        ndarray::concatenate(Axis(1), &views).unwrap_or_else(|_| Array2::zeros((x.nrows(), 0)))
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct LinearForecaster {
    pub features: FeatureSpec,
    q: f64,
    fitted: Option<(Scale, FittedLinearRegression<f64>, f64)>,
}

impl LinearForecaster {
    pub fn new(features: FeatureSpec, q: f64) -> LinearForecaster {
        LinearForecaster { features, q, fitted: None }
    }
}

impl Forecaster for LinearForecaster {
    fn name(&self) -> &str {
        "linear"
    }

    fn horizon(&self) -> usize {
        self.features.horizon
    }

    fn fit(&mut self, series: &Series, range: std::ops::Range<usize>) -> Result<(), FitError> {
        let (x, y, _) = self.features.training_set(series, range);
        if y.len() < 30 {
            return Err(FitError(format!("linear model: {} usable points in the window, 30 needed", y.len())));
        }
        let scale = Scale::of(&x);
        let xs = scale.apply(&x);
        let model = LinearRegression::new().fit(&Dataset::new(xs.clone(), y.clone())).map_err(|e| FitError(format!("linear model: {e}")))?;
        let predicted = model.predict(&xs);
        let mut residuals: Vec<f64> = y.iter().zip(predicted.iter()).map(|(a, p)| a - p).collect();
        if residuals.iter().any(|r| !r.is_finite()) {
            return Err(FitError("linear model: the fit did not converge to finite values".into()));
        }
        let margin = quantile(&mut residuals, self.q).max(0.0);
        self.fitted = Some((scale, model, margin));
        Ok(())
    }

    fn predict(&self, series: &Series, at: usize) -> Option<Forecast> {
        let (scale, model, margin) = self.fitted.as_ref()?;
        let row = self.features.row(series, at)?;
        let x = scale.apply(&Array2::from_shape_vec((1, row.len()), row).ok()?);
        let mean = model.predict(&x)[0];
        mean.is_finite().then_some(Forecast { mean, upper: mean + margin })
    }

    fn encode(&self) -> Result<Vec<u8>, String> {
        super::stored::encode(&super::stored::StoredRef::Linear(self))
    }
}
