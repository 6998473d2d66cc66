//! Optimisation as open_clip does it: AdamW (PyTorch's formula) with decoupled weight decay on
//! the parameters of two or more dimensions only (not gains, biases, BatchNorm, the logit
//! scale), global gradient-norm clipping, and a linear-warmup + cosine learning rate.
//!
//! The moments are kept per parameter *path* (e.g. `text.ln_final.gamma`), not per burn
//! `ParamId`, so a checkpoint restores them into a freshly built model.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::FloatDType;
use clip_model::precision::float_dtype;
use serde::{Deserialize, Serialize};

/// AdamW hyper-parameters (design.md section 4: ViT betas (0.9, 0.98) eps 1e-6, ResNet (0.9, 0.999) eps 1e-8).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamWConfig {
    /// The paper's betas and eps for the model's image tower type.
    pub fn for_model(config: &clip_model::ClipConfig, weight_decay: f64) -> Self {
        let vit = matches!(config.vision_cfg.layers, clip_model::config::VisionLayers::Vit(_));
        Self { beta1: 0.9, beta2: if vit { 0.98 } else { 0.999 }, eps: if vit { 1e-6 } else { 1e-8 }, weight_decay }
    }
}

struct Moments {
    exp_avg: Tensor<1>,
    exp_avg_sq: Tensor<1>,
}

pub struct AdamW {
    pub config: AdamWConfig,
    /// Optimiser steps taken (the bias corrections use it).
    pub steps: u64,
    moments: HashMap<String, Moments>,
}

/// Name prefixes of the moments in a checkpoint.
const EXP_AVG: &str = "optimizer.exp_avg.";
const EXP_AVG_SQ: &str = "optimizer.exp_avg_sq.";

impl AdamW {
    pub fn new(config: AdamWConfig) -> Self {
        Self { config, steps: 0, moments: HashMap::new() }
    }

    /// One update of every parameter that has a gradient; gradients are first multiplied by
    /// `grad_scale` (the clipping factor).
    pub fn step<M: Module>(&mut self, model: M, grads: &mut GradientsParams, lr: f64, grad_scale: f64) -> M {
        self.steps += 1;
        let mut update = Update { optim: self, grads, lr, grad_scale, path: Vec::new() };
        model.map(&mut update)
    }

    /// The moments as named tensors for a checkpoint (`optimizer.exp_avg.<path>`, ...).
    pub fn to_tensors(&self) -> Vec<(String, TensorData)> {
        let mut out = Vec::new();
        let mut names: Vec<&String> = self.moments.keys().collect();
        names.sort();
        for name in names {
            let m = &self.moments[name];
            out.push((format!("{EXP_AVG}{name}"), m.exp_avg.to_data()));
            out.push((format!("{EXP_AVG_SQ}{name}"), m.exp_avg_sq.to_data()));
        }
        out
    }

    /// Restores moments written by [`AdamW::to_tensors`].
    pub fn load_tensors(&mut self, tensors: Vec<(String, TensorData)>, steps: u64, device: &Device) -> anyhow::Result<()> {
        let mut avg = HashMap::new();
        let mut sq = HashMap::new();
        for (name, data) in tensors {
            let n = data.shape().num_elements();
            let tensor = Tensor::<1>::from_data(data.convert::<f32>(), device).reshape([n]);
            if let Some(path) = name.strip_prefix(EXP_AVG_SQ) {
                sq.insert(path.to_string(), tensor);
            } else if let Some(path) = name.strip_prefix(EXP_AVG) {
                avg.insert(path.to_string(), tensor);
            }
        }
        self.moments.clear();
        for (path, exp_avg) in avg {
            let exp_avg_sq = sq.remove(&path).ok_or_else(|| anyhow::anyhow!("checkpoint: {path} has no second moment"))?;
            self.moments.insert(path, Moments { exp_avg, exp_avg_sq });
        }
        self.steps = steps;
        Ok(())
    }
}

struct Update<'a> {
    optim: &'a mut AdamW,
    grads: &'a mut GradientsParams,
    lr: f64,
    grad_scale: f64,
    path: Vec<String>,
}

impl ModuleMapper for Update<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let shape = tensor.shape();
        let n = shape.num_elements();
        let c = self.optim.config;
        let t = self.optim.steps as i32;
        // The update is computed in f32 and the moments are kept in f32 whatever the weights'
        // dtype: pure bf16/f16 weights are rounded once, after the update (f16 moments would
        // underflow: g^2 of a small gradient is below f16's range).
        let dtype = float_dtype(&tensor);
        let mut p = tensor.inner().reshape([n]).cast(FloatDType::F32);
        let mut g = grad.reshape([n]).cast(FloatDType::F32);
        if self.grad_scale != 1.0 {
            g = g * self.grad_scale;
        }
        // Decoupled weight decay on matrices, convolutions and embeddings only.
        if D >= 2 && c.weight_decay > 0.0 {
            p = p * (1.0 - self.lr * c.weight_decay);
        }
        let name = self.path.join(".");
        let (exp_avg, exp_avg_sq) = match self.optim.moments.remove(&name) {
            Some(m) => (
                m.exp_avg * c.beta1 + g.clone() * (1.0 - c.beta1),
                m.exp_avg_sq * c.beta2 + g.square() * (1.0 - c.beta2),
            ),
            None => (g.clone() * (1.0 - c.beta1), g.square() * (1.0 - c.beta2)),
        };
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2 = 1.0 - c.beta2.powi(t);
        let denom = exp_avg_sq.clone().sqrt() / bias2.sqrt() + c.eps;
        p = p - exp_avg.clone() / denom * (self.lr / bias1);
        self.optim.moments.insert(name, Moments { exp_avg, exp_avg_sq });
        let mut updated = Tensor::from_inner(p.reshape(shape).cast(dtype));
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// The global L2 norm of all gradients of `model` (PyTorch `clip_grad_norm_`'s total norm).
pub fn grad_norm<M: Module>(model: &M, grads: &GradientsParams) -> f64 {
    struct Norm<'a> {
        grads: &'a GradientsParams,
        sum: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Norm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let n = g.shape().num_elements();
                let sq = g.reshape([n]).cast(FloatDType::F32).square().sum();
                self.sum = Some(match self.sum.take() {
                    Some(s) => s + sq,
                    None => sq,
                });
            }
        }
    }
    let mut norm = Norm { grads, sum: None };
    model.visit(&mut norm);
    norm.sum.map(|s| (s.into_scalar::<f32>() as f64).sqrt()).unwrap_or(0.0)
}

/// PyTorch's clip coefficient: `min(1, max_norm / (norm + 1e-6))`.
pub fn clip_scale(norm: f64, max_norm: Option<f64>) -> f64 {
    match max_norm {
        Some(max) if norm.is_finite() => (max / (norm + 1e-6)).min(1.0),
        _ => 1.0,
    }
}

/// open_clip's `cosine_lr`: linear warmup over `warmup` steps to `base`, then cosine to 0 at `total`.
pub fn cosine_lr(base: f64, warmup: u64, total: u64, step: u64) -> f64 {
    if step < warmup {
        base * (step + 1) as f64 / warmup as f64
    } else {
        let e = (step - warmup) as f64;
        let es = total.saturating_sub(warmup).max(1) as f64;
        0.5 * (1.0 + (std::f64::consts::PI * e / es).cos()) * base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert!((cosine_lr(1.0, 10, 110, 0) - 0.1).abs() < 1e-12);
        assert!((cosine_lr(1.0, 10, 110, 9) - 1.0).abs() < 1e-12);
        assert!((cosine_lr(1.0, 10, 110, 10) - 1.0).abs() < 1e-12);
        assert!((cosine_lr(1.0, 10, 110, 60) - 0.5).abs() < 1e-12);
        assert!(cosine_lr(1.0, 10, 110, 110).abs() < 1e-12);
        assert_eq!(clip_scale(10.0, Some(1.0)), 1.0 / (10.0 + 1e-6));
        assert_eq!(clip_scale(0.5, Some(1.0)), 1.0);
        assert_eq!(clip_scale(10.0, None), 1.0);
    }

    /// Two AdamW steps on a linear layer against PyTorch's `torch.optim.AdamW` formula, computed
    /// here by hand in f64: the weight (2-D) decays, the bias (1-D) does not.
    #[test]
    fn adamw_matches_the_pytorch_formula() {
        let device = Device::flex().autodiff();
        let config = AdamWConfig { beta1: 0.9, beta2: 0.98, eps: 1e-6, weight_decay: 0.2 };
        let mut optim = AdamW::new(config);
        let mut layer: Linear = LinearConfig::new(2, 1).init(&device);
        let w0: Vec<f64> = layer.weight.val().into_data().try_to_vec::<f32>().unwrap().iter().map(|&v| v as f64).collect();
        let b0 = layer.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap()[0] as f64;
        let x = [1.0f64, -2.0];
        let lr = 0.1;
        let (mut w, mut b) = (w0.clone(), b0);
        let (mut mw, mut vw, mut mb, mut vb) = ([0.0f64; 2], [0.0f64; 2], 0.0f64, 0.0f64);
        for t in 1..=2 {
            let input = Tensor::<2>::from_floats([[x[0] as f32, x[1] as f32]], &device);
            let loss = layer.forward(input).sum();
            let mut grads = GradientsParams::from_grads(loss.backward(), &layer);
            // |d/dw|^2 + |d/db|^2 = 1 + 4 + 1.
            assert!((grad_norm(&layer, &grads) - 6f64.sqrt()).abs() < 1e-6);
            layer = optim.step(layer, &mut grads, lr, 1.0);
            // Reference: d(sum(w.x + b))/dw = x, /db = 1.
            let (bc1, bc2) = (1.0 - 0.9f64.powi(t), 1.0 - 0.98f64.powi(t));
            for i in 0..2 {
                w[i] *= 1.0 - lr * 0.2;
                mw[i] = 0.9 * mw[i] + 0.1 * x[i];
                vw[i] = 0.98 * vw[i] + 0.02 * x[i] * x[i];
                w[i] -= lr / bc1 * mw[i] / (vw[i].sqrt() / bc2.sqrt() + 1e-6);
            }
            mb = 0.9 * mb + 0.1;
            vb = 0.98 * vb + 0.02;
            b -= lr / bc1 * mb / (vb.sqrt() / bc2.sqrt() + 1e-6);
        }
        let got_w = layer.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let got_b = layer.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap()[0];
        for i in 0..2 {
            assert!((got_w[i] as f64 - w[i]).abs() < 1e-5, "w[{i}] {} vs {}", got_w[i], w[i]);
        }
        assert!((got_b as f64 - b).abs() < 1e-5, "b {got_b} vs {b}");
        assert!(layer.weight.val().is_require_grad());

        // The moments survive a round trip through checkpoint tensors.
        let tensors = optim.to_tensors();
        assert_eq!(tensors.len(), 4);
        let mut restored = AdamW::new(config);
        restored.load_tensors(tensors, optim.steps, &device.clone().inner()).unwrap();
        assert_eq!(restored.to_tensors().iter().map(|t| t.1.clone()).collect::<Vec<_>>(), optim.to_tensors().iter().map(|t| t.1.clone()).collect::<Vec<_>>());
    }
}
