//! wasm-bindgen bindings over `clip-model` for the npm package `clip-burn` (see `js/index.js`,
//! which adds weight fetching, image conversion and the prompt-embedding cache).
//!
//! Every method is async where the GPU is involved (synchronous readbacks panic on the web) and
//! every failure becomes a JS `Error` whose message a web developer can act on.

use burn::prelude::*;
use clip_model::import;
use clip_model::preprocess::{self, Decoded};
use clip_model::text;
use clip_model::tokenizer::{TokenIds, Tokenizer};
use clip_model::{normalize, zero_shot, Clip, ClipConfig};
use wasm_bindgen::prelude::*;

#[cfg(feature = "threads")]
mod threads;

fn js_error(context: &str, e: impl std::fmt::Display) -> JsError {
    JsError::new(&format!("{context}: {e}"))
}

async fn read_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, JsError> {
    let data = t.into_data_async().await.map_err(|e| js_error("reading results from the device failed (WebGPU device lost?)", format!("{e:?}")))?;
    data.convert::<f32>().try_into_vec::<f32>().map_err(|e| js_error("unexpected tensor data", format!("{e:?}")))
}

#[cfg(feature = "webgpu")]
thread_local! {
    /// The WebGPU runtime can be initialised once per page; every model shares it.
    static WEBGPU: std::cell::RefCell<Option<Device>> = const { std::cell::RefCell::new(None) };
}

#[cfg(feature = "webgpu")]
async fn webgpu_device() -> Result<Device, JsError> {
    if let Some(device) = WEBGPU.with(|d| d.borrow().clone()) {
        return Ok(device);
    }
    let device = Device::wgpu_options()
        .init_async()
        .await
        .map_err(|e| js_error("WebGPU is not available", format!("{e:?}")))?;
    WEBGPU.with(|d| *d.borrow_mut() = Some(device.clone()));
    Ok(device)
}

/// A model on a device, with its tokenizer.
#[wasm_bindgen]
pub struct ClipModel {
    model: Clip,
    device: Device,
    backend: String,
    tokenizer: Tokenizer,
    temperature: f32,
    /// The threaded module's CPU pool (js/threads.js); without one, forward passes run on the caller.
    #[cfg(feature = "threads")]
    pool: Option<threads::Pool>,
}

#[wasm_bindgen]
impl ClipModel {
    /// Loads weights (burnpack, open_clip or Hugging Face safetensors).
    ///
    /// `model`: an open_clip model name, the text of an open_clip / Hugging Face config JSON, or
    /// undefined for a burnpack (which carries its config). `backend`: "webgpu" or "cpu".
    pub async fn load(weights: Vec<u8>, model: Option<String>, backend: String) -> Result<ClipModel, JsError> {
        std::panic::set_hook(Box::new(|info| web_log(&format!("clip-burn panicked: {info}"))));
        let config = match model.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(json) if json.starts_with('{') => Some(ClipConfig::from_json_auto(json).map_err(|e| js_error("invalid model config", e))?),
            // The error says "unknown model ..." and lists the known ones.
            Some(name) => Some(ClipConfig::preset(name).map_err(|e| JsError::new(&e.to_string()))?),
        };
        let device = match backend.as_str() {
            "cpu" => Device::flex(),
            #[cfg(feature = "webgpu")]
            "webgpu" => webgpu_device().await?,
            #[cfg(not(feature = "webgpu"))]
            "webgpu" => return Err(JsError::new("this clip-burn module has no WebGPU backend (it is the CPU-only one)")),
            other => return Err(JsError::new(&format!("unknown backend {other:?}: expected \"webgpu\" or \"cpu\""))),
        };
        let model = import::load_bytes(config.as_ref(), weights, &device).map_err(|e| js_error("cannot load weights", e))?;
        let temperature = read_vec(model.temperature()).await?[0];
        let tokenizer = Tokenizer::new().map_err(|e| js_error("tokenizer", e))?;
        Ok(ClipModel {
            model,
            device,
            backend,
            tokenizer,
            temperature,
            #[cfg(feature = "threads")]
            pool: None,
        })
    }

    /// Runs the forward passes on `pool` from now on (the threaded module).
    #[cfg(feature = "threads")]
    #[wasm_bindgen(js_name = usePool)]
    pub fn use_pool(&mut self, pool: &threads::Pool) {
        self.pool = Some(pool.clone());
    }

    /// The threads a forward pass runs on: the pool's, or 1.
    #[wasm_bindgen(getter)]
    pub fn threads(&self) -> usize {
        #[cfg(feature = "threads")]
        if let Some(pool) = &self.pool {
            return pool.threads();
        }
        1
    }

    /// `f`'s features of the model, read back: on the pool when there is one.
    async fn forward<F>(&self, f: F) -> Result<Vec<f32>, JsError>
    where
        F: FnOnce(&Clip) -> Tensor<2> + Send + 'static,
    {
        #[cfg(feature = "threads")]
        if let Some(pool) = &self.pool {
            let model = self.model.clone();
            return read_vec(pool.run(move || f(&model)).await?).await;
        }
        read_vec(f(&self.model)).await
    }

    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    #[wasm_bindgen(getter, js_name = embedDim)]
    pub fn embed_dim(&self) -> usize {
        self.model.config.embed_dim
    }

    #[wasm_bindgen(getter, js_name = imageSize)]
    pub fn image_size(&self) -> usize {
        self.model.config.vision_cfg.image_size
    }

    #[wasm_bindgen(getter, js_name = contextLength)]
    pub fn context_length(&self) -> usize {
        self.model.config.text_cfg.context_length
    }

    /// `exp(logit_scale)`.
    #[wasm_bindgen(getter)]
    pub fn temperature(&self) -> f32 {
        self.temperature
    }

    /// The model config as open_clip JSON.
    #[wasm_bindgen(getter)]
    pub fn config(&self) -> String {
        self.model.config.to_json()
    }

    async fn embed_decoded(&self, decoded: Vec<Decoded>, normalized: bool) -> Result<Vec<f32>, JsError> {
        let size = self.image_size();
        let pixels = decoded
            .iter()
            .map(|d| preprocess::preprocess(d, size))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| js_error("cannot preprocess image", e))?;
        self.embed_pixels(pixels, normalized).await
    }

    /// Features of preprocessed images, in one forward pass.
    async fn embed_pixels(&self, pixels: Vec<preprocess::Pixels>, normalized: bool) -> Result<Vec<f32>, JsError> {
        let batch = preprocess::Pixels::batch(&pixels, &self.device).map_err(|e| js_error("cannot batch images", e))?;
        self.forward(move |model| {
            let features = model.encode_image(batch);
            if normalized { normalize(features) } else { features }
        })
        .await
    }

    /// L2-normalised features of encoded image files (JPEG, PNG, WebP bytes), decoded by the
    /// same Rust code as natively. Flat `[n, embedDim]`.
    #[wasm_bindgen(js_name = embedImageFiles)]
    pub async fn embed_image_files(&self, files: Vec<js_sys::Uint8Array>) -> Result<Vec<f32>, JsError> {
        let decoded = files
            .iter()
            .enumerate()
            .map(|(i, f)| preprocess::decode(&f.to_vec()).map_err(|e| js_error(&format!("image {i}"), e)))
            .collect::<Result<Vec<_>, _>>()?;
        self.embed_decoded(decoded, true).await
    }

    /// L2-normalised features of one RGBA image (canvas pixels). Flat `[embedDim]`.
    #[wasm_bindgen(js_name = embedImageRgba)]
    pub async fn embed_image_rgba(&self, width: usize, height: usize, rgba: Vec<u8>) -> Result<Vec<f32>, JsError> {
        let decoded = preprocess::from_rgba(width, height, rgba).map_err(|e| js_error("invalid image data", e))?;
        self.embed_decoded(vec![decoded], true).await
    }

    /// L2-normalised features of a batch of images in one forward pass. Flat `[n, embedDim]`.
    ///
    /// Each item of `images` is the bytes of an encoded file (a `Uint8Array`: JPEG, PNG, WebP,
    /// decoded by the same Rust code as natively) or RGBA pixels `{ width, height, data }` (canvas
    /// `ImageData` or the like, `data` a `Uint8Array` or `Uint8ClampedArray`). An image that cannot
    /// be read, decoded or preprocessed fails the call with "image N: ...", where N is its index
    /// plus `firstIndex` (the caller's index when it sends a long list in chunks).
    #[wasm_bindgen(js_name = embedImages)]
    pub async fn embed_images(&self, images: js_sys::Array, first_index: Option<usize>) -> Result<Vec<f32>, JsError> {
        let first = first_index.unwrap_or(0);
        if images.length() == 0 {
            return Ok(Vec::new());
        }
        let size = self.image_size();
        let pixels = images
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = |e: String| JsError::new(&format!("image {}: {e}", first + i));
                let decoded = decode_item(&item).map_err(at)?;
                preprocess::preprocess(&decoded, size).map_err(|e| at(format!("cannot preprocess image: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.embed_pixels(pixels, true).await
    }

    /// L2-normalised text features. Flat `[texts.length, embedDim]`.
    #[wasm_bindgen(js_name = embedTexts)]
    pub async fn embed_texts(&self, texts: Vec<String>) -> Result<Vec<f32>, JsError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.model.check_tokenizer().map_err(|e| js_error("cannot embed text", e))?;
        let ids = text::input(&self.tokenizer.encode_batch(&texts, self.context_length()), &self.device);
        self.forward(move |model| normalize(model.encode_text(ids))).await
    }

    /// Projected, unnormalised features of preprocessed pixels `[n, 3, S, S]` (for parity checks).
    #[wasm_bindgen(js_name = encodePixels)]
    pub async fn encode_pixels(&self, pixels: Vec<f32>, n: usize) -> Result<Vec<f32>, JsError> {
        let s = self.image_size();
        if n == 0 || pixels.len() != n * 3 * s * s {
            return Err(JsError::new(&format!("encodePixels: expected {n} x 3 x {s} x {s} values, got {}", pixels.len())));
        }
        let t = Tensor::<4>::from_data(TensorData::new(pixels, [n, 3, s, s]), &self.device);
        self.forward(move |model| model.encode_image(t)).await
    }

    /// Projected, unnormalised features of token ids `[n, contextLength]` (for parity checks).
    #[wasm_bindgen(js_name = encodeIds)]
    pub async fn encode_ids(&self, ids: Vec<i32>, n: usize) -> Result<Vec<f32>, JsError> {
        let ctx = self.context_length();
        let vocab = self.model.config.text_cfg.vocab_size as i32;
        if n == 0 || ids.len() != n * ctx || ids.iter().any(|&i| i < 0 || i >= vocab) {
            return Err(JsError::new(&format!("encodeIds: expected {n} x {ctx} ids in [0, {vocab})")));
        }
        // In range (checked above), so the casts are exact.
        let tokens = TokenIds { ids: ids.into_iter().map(|i| i as u32).collect(), batch: n, context_length: ctx };
        let t = text::input(&tokens, &self.device);
        self.forward(move |model| model.encode_text(t)).await
    }
}

/// One item of `embedImages`: encoded-file bytes, or `{ width, height, data }` RGBA pixels.
fn decode_item(item: &JsValue) -> Result<Decoded, String> {
    if let Some(bytes) = item.dyn_ref::<js_sys::Uint8Array>() {
        return preprocess::decode(&bytes.to_vec()).map_err(|e| e.to_string());
    }
    if !item.is_object() {
        return Err(format!("expected the bytes of an image file (Uint8Array) or {{ width, height, data }} RGBA pixels, got {}", describe(item)));
    }
    let field = |name: &str| js_sys::Reflect::get(item, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
    let dimension = |name: &str| {
        let v = field(name);
        match v.as_f64() {
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Ok(n as usize),
            _ => Err(format!("RGBA pixels need a whole, non-negative `{name}`, got {}", describe(&v))),
        }
    };
    let (width, height) = (dimension("width")?, dimension("height")?);
    let data = field("data");
    let rgba = if let Some(a) = data.dyn_ref::<js_sys::Uint8Array>() {
        a.to_vec()
    } else if let Some(a) = data.dyn_ref::<js_sys::Uint8ClampedArray>() {
        a.to_vec()
    } else {
        return Err(format!("RGBA pixels need `data` as a Uint8Array or Uint8ClampedArray, got {}", describe(&data)));
    };
    preprocess::from_rgba(width, height, rgba).map_err(|e| format!("invalid image data: {e}"))
}

/// A JS value's kind for error messages: "undefined", "a number", "[object Blob]".
fn describe(v: &JsValue) -> String {
    if v.is_undefined() {
        return "undefined".into();
    }
    if v.is_null() {
        return "null".into();
    }
    match v.js_typeof().as_string().as_deref() {
        Some("object") => String::from(js_sys::Object::to_string(v.unchecked_ref::<js_sys::Object>())),
        Some(kind) => format!("a {kind}"),
        None => "a value of unknown kind".into(),
    }
}

/// Token ids of `texts`, flat `[n, contextLength]`.
#[wasm_bindgen]
pub fn tokenize(texts: Vec<String>, context_length: usize) -> Result<Vec<u32>, JsError> {
    let tok = Tokenizer::new().map_err(|e| js_error("tokenizer", e))?;
    Ok(tok.encode_batch(&texts, context_length).ids)
}

fn host_tensor(values: Vec<f32>, rows: usize, dim: usize, what: &str) -> Result<Tensor<2>, JsError> {
    if rows == 0 || dim == 0 || values.len() != rows * dim {
        return Err(JsError::new(&format!("{what}: expected {rows} x {dim} values, got {}", values.len())));
    }
    Ok(Tensor::from_data(TensorData::new(values, [rows, dim]), &Device::flex()))
}

fn host_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default()
}

/// Prompt ensembling: normalised text features `[classes * templates, dim]` (class-major) ->
/// one unit vector per class `[classes, dim]`.
#[wasm_bindgen]
pub fn ensemble(text_features: Vec<f32>, classes: usize, templates: usize, dim: usize) -> Result<Vec<f32>, JsError> {
    let t = host_tensor(text_features, classes * templates, dim, "ensemble")?;
    Ok(host_vec(zero_shot::ensemble(t, classes)))
}

/// softmax(temperature * image @ classifier^T): `[images, dim]` x `[classes, dim]` -> `[images, classes]`.
#[wasm_bindgen]
pub fn probabilities(image_features: Vec<f32>, images: usize, classifier: Vec<f32>, classes: usize, dim: usize, temperature: f32) -> Result<Vec<f32>, JsError> {
    let img = host_tensor(image_features, images, dim, "image features")?;
    let cls = host_tensor(classifier, classes, dim, "classifier")?;
    let t = Tensor::<1>::from_data(TensorData::new(vec![temperature], [1]), &Device::flex());
    Ok(host_vec(zero_shot::probabilities(img, cls, t)))
}

/// The 80 OpenAI ImageNet prompt templates.
#[wasm_bindgen(js_name = imagenetTemplates)]
pub fn imagenet_templates() -> Vec<String> {
    zero_shot::openai_imagenet_templates().into_iter().map(String::from).collect()
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn web_log(s: &str);
}
