//! The threaded build's CPU pool (feature `threads`, module `pkg-threads/`): a rayon pool per
//! model whose threads are Web Workers sharing this module's memory.
//!
//! js/threads.js starts it: `new PoolStarter(n)`, then n workers that each instantiate the module
//! on the same memory and call `runPoolThread(starter.receiver())` (it returns when the pool is
//! dropped, and the worker closes), then `starter.build()` hands each worker its rayon thread.
//! The model's forward passes run on the pool (`Pool::run`) while the calling thread (the page or
//! a ClipWorker) awaits the result instead of blocking: a page's main thread may not block, and a
//! waiting caller would only spin beside the workers.
//!
//! Why not wasm-bindgen-rayon: its worker script finds the main module with `import('../../..')`
//! (bundlers only) or, with `no-bundler`, with the glue's `import.meta.url` at run time (plain pages
//! only: in a bundle that names the app's chunk), and it builds rayon's global pool, which cannot be
//! shut down: dispose() must end the workers. The package is used both ways (tests/apps).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use rayon::{ThreadBuilder, ThreadPool, ThreadPoolBuilder};
use wasm_bindgen::prelude::*;

type Handoff = Mutex<Receiver<ThreadBuilder>>;

/// A pool being started: the channel its rayon threads travel through to the workers.
#[wasm_bindgen]
pub struct PoolStarter {
    threads: usize,
    sender: SyncSender<ThreadBuilder>,
    receiver: Arc<Handoff>,
}

#[wasm_bindgen]
impl PoolStarter {
    #[wasm_bindgen(constructor)]
    pub fn new(threads: usize) -> Result<PoolStarter, JsError> {
        if threads == 0 {
            return Err(JsError::new("a thread pool needs at least one thread"));
        }
        let (sender, receiver) = sync_channel(threads);
        Ok(PoolStarter { threads, sender, receiver: Arc::new(Mutex::new(receiver)) })
    }

    /// A handle on the channel for one worker's `runPoolThread` (each call one handle, each
    /// handle used once).
    pub fn receiver(&self) -> usize {
        Arc::into_raw(Arc::clone(&self.receiver)) as usize
    }

    /// Builds the pool once its workers wait in `runPoolThread`.
    pub fn build(self) -> Result<Pool, JsError> {
        let sender = self.sender;
        let pool = ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .thread_name(|i| format!("clip-burn cpu {i}"))
            // The channel holds `threads` builders: sending never blocks the calling thread.
            .spawn_handler(move |thread| sender.send(thread).map_err(|_| std::io::Error::other("the pool's workers are gone")))
            .build()
            .map_err(|e| JsError::new(&format!("cannot start the CPU thread pool: {e}")))?;
        Ok(Pool(Arc::new(pool)))
    }
}

/// This module's compiled code, for the pool workers to instantiate on the same memory.
#[wasm_bindgen(js_name = sharedModule)]
pub fn wasm_module() -> JsValue {
    wasm_bindgen::module()
}

/// This module's shared memory.
#[wasm_bindgen(js_name = sharedMemory)]
pub fn wasm_memory() -> JsValue {
    wasm_bindgen::memory()
}

/// Runs one of the pool's rayon threads on the calling Web Worker until the pool is dropped.
#[wasm_bindgen(js_name = runPoolThread)]
pub fn run_pool_thread(receiver: usize) {
    // SAFETY: `receiver` is a handle from `PoolStarter::receiver`, each used once (js/threads.js).
    let receiver = unsafe { Arc::from_raw(receiver as *const Handoff) };
    let thread = receiver.lock().ok().and_then(|r| r.recv().ok());
    drop(receiver);
    if let Some(thread) = thread {
        thread.run();
    }
}

/// A model's CPU thread pool: dropping the last handle ends its threads (and their workers).
#[wasm_bindgen]
#[derive(Clone)]
pub struct Pool(Arc<ThreadPool>);

#[wasm_bindgen]
impl Pool {
    /// The threads the pool runs on.
    #[wasm_bindgen(getter)]
    pub fn threads(&self) -> usize {
        self.0.current_num_threads()
    }
}

impl Pool {
    /// Runs `f` on the pool; the caller awaits its result without blocking.
    pub async fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Result<R, JsError> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.0.spawn(move || {
            let _ = tx.send(f());
        });
        rx.await.map_err(|_| JsError::new("the CPU thread pool stopped before the result came back"))
    }
}
