//! The zero-shot head (open_clip `zero_shot_classifier.py`): class names x templates -> normalised
//! text features, averaged per class and re-normalised into a `[classes, E]` classifier;
//! probabilities = softmax(exp(logit_scale) * normalize(image) @ W^T).

use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::clip::{normalize, Clip};
use crate::text;
use crate::tokenizer::Tokenizer;
use crate::Error;

const OPENAI_IMAGENET: &str = include_str!("../assets/openai_imagenet_templates.txt");

/// The 80 prompt templates OpenAI used for ImageNet (`{}` is the class name).
pub fn openai_imagenet_templates() -> Vec<&'static str> {
    OPENAI_IMAGENET.lines().filter(|l| !l.is_empty()).collect()
}

/// Fills each template with each class name, class-major: `[c0t0, c0t1, .., c1t0, ..]`.
pub fn prompts<S: AsRef<str>, T: AsRef<str>>(classnames: &[S], templates: &[T]) -> Result<Vec<String>, Error> {
    if classnames.is_empty() || templates.is_empty() {
        return Err(Error::Input("zero-shot needs at least one class name and one template".into()));
    }
    if let Some(t) = templates.iter().find(|t| !t.as_ref().contains("{}")) {
        return Err(Error::Input(format!("template {:?} has no {{}} placeholder for the class name", t.as_ref())));
    }
    Ok(classnames
        .iter()
        .flat_map(|c| templates.iter().map(move |t| t.as_ref().replace("{}", c.as_ref())))
        .collect())
}

/// Ensembles the text features of `prompts(..)` into one unit vector per class.
///
/// # Shapes
/// - text_features: `[C * T, E]` (class-major) -> `[C, E]`
pub fn ensemble(text_features: Tensor<2>, classes: usize) -> Tensor<2> {
    let [n, e] = text_features.dims();
    let per_class = normalize(text_features).reshape([classes, n / classes, e]).mean_dim(1);
    normalize(per_class.reshape([classes, e]))
}

/// Encodes every prompt (in batches of `batch`) and ensembles them into a classifier.
pub fn classifier<S: AsRef<str>, T: AsRef<str>>(
    model: &Clip,
    tokenizer: &Tokenizer,
    classnames: &[S],
    templates: &[T],
    batch: usize,
    device: &Device,
) -> Result<Tensor<2>, Error> {
    let prompts = prompts(classnames, templates)?;
    Ok(ensemble(encode_texts(model, tokenizer, &prompts, batch, device)?, classnames.len()))
}

/// Projected (unnormalised) features of `texts`, tokenized and encoded `batch` at a time.
///
/// # Shapes
/// -> `[texts.len(), E]`
pub fn encode_texts<S: AsRef<str>>(model: &Clip, tokenizer: &Tokenizer, texts: &[S], batch: usize, device: &Device) -> Result<Tensor<2>, Error> {
    model.check_tokenizer()?;
    if texts.is_empty() {
        return Err(Error::Input("no texts to encode".into()));
    }
    let ctx = model.config.text_cfg.context_length;
    let features: Vec<Tensor<2>> = texts
        .chunks(batch.max(1))
        .map(|chunk| model.encode_text(text::input(&tokenizer.encode_batch(chunk, ctx), device)))
        .collect();
    Ok(Tensor::cat(features, 0))
}

/// Class probabilities for each image.
///
/// # Shapes
/// - image_features: `[N, E]`, classifier: `[C, E]`, logit_scale_exp: `[1]` -> `[N, C]`
pub fn probabilities(image_features: Tensor<2>, classifier: Tensor<2>, temperature: Tensor<1>) -> Tensor<2> {
    let logits = normalize(image_features).matmul(classifier.transpose()) * temperature.unsqueeze();
    softmax(logits, 1)
}

/// `(class index, probability)` sorted by probability, best first, at most `k`.
pub fn top_k(probs: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut ranked: Vec<(usize, f32)> = probs.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.truncate(k);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eighty_templates() {
        let t = openai_imagenet_templates();
        assert_eq!(t.len(), 80);
        assert_eq!(t[0], "a bad photo of a {}.");
        assert!(t.iter().all(|t| t.matches("{}").count() == 1));
    }

    #[test]
    fn prompts_are_class_major() {
        let p = prompts(&["cat", "dog"], &["a {}.", "the {}!"]).unwrap();
        assert_eq!(p, ["a cat.", "the cat!", "a dog.", "the dog!"]);
        assert!(prompts(&["cat"], &["no placeholder"]).is_err());
    }

    #[test]
    fn ensemble_is_normalised_mean() {
        let device = crate::device::parse("cpu").unwrap();
        let f = Tensor::<2>::from_data([[3.0, 0.0], [0.0, 2.0], [0.0, 5.0], [0.0, 1.0]], &device);
        let w = ensemble(f, 2).into_data().try_to_vec::<f32>().unwrap();
        let s = 0.5f32.sqrt();
        for (a, b) in w.iter().zip([s, s, 0.0, 1.0]) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
    }

    #[test]
    fn top_k_orders() {
        assert_eq!(top_k(&[0.1, 0.7, 0.2], 2), vec![(1, 0.7), (2, 0.2)]);
    }
}
