//! A loaded BERT-style ONNX model with its tokenizer. Used for the sentence encoder now and the
//! cross-encoder later; the session settings are the ones proven inside a backend
//! (see README "Architecture"): 1 intra-op and 1 inter-op thread, no spinning, the `.ort` file
//! memory-mapped so its weights stay in the shared page cache instead of private memory.
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use memmap2::Mmap;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{RunOptions, Session};
use ort::value::Tensor;
use sha2::{Digest, Sha256};
use tokenizers::{EncodeInput, Tokenizer, TruncationParams};

use crate::error::{RecError, Result, SETUP_HINT};
use recommender_core::limits::MAX_TOKENS;

use super::manifest::{verify, Manifest};
use super::runtime;

/// Identity of a file on disk: a change means the file was replaced or rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    /// The inode's change time, which no copy tool can set: a file written in place with its
    /// size and modification time preserved still changes identity.
    ctime_ns: i64,
}

impl FileId {
    pub fn of(path: &Path) -> std::io::Result<FileId> {
        let m = std::fs::metadata(path)?;
        Ok(FileId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
        })
    }

    /// The identity as bytes, the same in every process of this server (the shared score keys
    /// hash it).
    pub fn to_bytes(&self) -> [u8; 40] {
        let mut b = [0u8; 40];
        b[..8].copy_from_slice(&self.dev.to_le_bytes());
        b[8..16].copy_from_slice(&self.ino.to_le_bytes());
        b[16..24].copy_from_slice(&self.size.to_le_bytes());
        b[24..32].copy_from_slice(&self.mtime_ns.to_le_bytes());
        b[32..].copy_from_slice(&self.ctime_ns.to_le_bytes());
        b
    }
}

/// The files of one model role (`encoder`, `cross-encoder`) under the model dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    pub role: &'static str,
    pub dir: PathBuf,
    pub model: PathBuf,
    pub tokenizer: PathBuf,
    /// `model.packed.data` when `model` is `model.packed.onnx`: the weights, pre-packed for this CPU.
    pub data: Option<PathBuf>,
}

/// The CPU feature flags (first `flags` line of /proc/cpuinfo), which decide ONNX Runtime's GEMM
/// kernels and so the layout of pre-packed weights; models/materialize.py writes the same string
/// into `model.packed.cpu`.
fn cpu_flags() -> Option<&'static str> {
    static FLAGS: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    FLAGS
        .get_or_init(|| {
            let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
            info.lines()
                .find(|l| l.starts_with("flags"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .as_deref()
}

/// Whether `dir` holds a pre-packed copy made on a CPU with these flags.
fn packed_usable(dir: &Path) -> bool {
    let (onnx, data, cpu) = (
        dir.join("model.packed.onnx"),
        dir.join("model.packed.data"),
        dir.join("model.packed.cpu"),
    );
    onnx.is_file()
        && data.is_file()
        && std::fs::read_to_string(cpu)
            .ok()
            .is_some_and(|made_on| cpu_flags().is_some_and(|here| made_on.trim() == here))
}

impl ModelFiles {
    /// Prefers `model.packed.onnx` (weights pre-packed for this CPU in the memory-mapped
    /// `model.packed.data`; skipped when it was made on a CPU with other flags), then the
    /// memory-mappable `model.ort`, else `model.onnx` (a user's HF export).
    pub fn locate(dir: PathBuf, role: &'static str) -> Result<ModelFiles> {
        let ort = dir.join("model.ort");
        let onnx = dir.join("model.onnx");
        let (model, data) = if packed_usable(&dir) {
            (
                dir.join("model.packed.onnx"),
                Some(dir.join("model.packed.data")),
            )
        } else if ort.is_file() {
            (ort, None)
        } else {
            (onnx, None)
        };
        let tokenizer = dir.join("tokenizer.json");
        for f in [&model, &tokenizer] {
            if !f.is_file() {
                return Err(RecError::missing(
                    format!("{role} model file {} does not exist", f.display()),
                    if role == "encoder" {
                        format!("{SETUP_HINT}, or SET recommender.model_dir to a directory holding encoder/model.onnx (or model.ort) and encoder/tokenizer.json (superuser only).")
                    } else {
                        "SET recommender.cross_encoder_dir to a directory holding model.onnx (or model.ort) and tokenizer.json of a cross-encoder export (superuser only), or RESET it to rerank with the bi-encoder.".to_string()
                    },
                ));
            }
        }
        Ok(ModelFiles {
            role,
            dir,
            model,
            tokenizer,
            data,
        })
    }

    /// Whether `dir` holds a model file of any of the kinds `locate` looks for, and a tokenizer.
    pub fn present(dir: &Path) -> bool {
        ["model.packed.onnx", "model.ort", "model.onnx"]
            .iter()
            .any(|f| dir.join(f).is_file())
            && dir.join("tokenizer.json").is_file()
    }

    /// Identity of every file the session reads; a change in any of them means a reload.
    pub fn ids(&self) -> Option<Vec<FileId>> {
        let mut ids = vec![
            FileId::of(&self.model).ok()?,
            FileId::of(&self.tokenizer).ok()?,
        ];
        if let Some(d) = &self.data {
            ids.push(FileId::of(d).ok()?);
        }
        Some(ids)
    }

    /// Whether the weights are pre-packed already (no per-call bulk session needed).
    pub fn prepacked(&self) -> bool {
        self.data.is_some()
    }

    fn manifest_key(&self, path: &Path) -> String {
        format!(
            "{}/{}",
            self.role,
            path.file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default()
        )
    }
}

/// Tokenizers in use in this backend, by the sha256 of their file: the encoder and a cross-encoder
/// with the same vocabulary (all-MiniLM-L6-v2 and ms-marco-MiniLM-L-6-v2 both ship
/// bert-base-uncased's) share one instance instead of parsing the same 0.5 MB JSON twice
/// (~14 ms each, on the first call of a backend) and keeping two copies.
#[allow(clippy::type_complexity)]
static TOKENIZERS: Mutex<Vec<([u8; 32], Weak<Tokenizer>, u32)>> = Mutex::new(Vec::new());

/// Loads (or shares) the tokenizer in `path`, set up for our batches: no padding (we pad each batch
/// to its longest text ourselves), truncation at sentence-transformers' 256 tokens. Returns it with
/// its pad id.
fn load_tokenizer(path: &Path) -> Result<(Arc<Tokenizer>, u32)> {
    let fail = |e: String| {
        RecError::external(
            format!("cannot load tokenizer {}: {e}", path.display()),
            format!("tokenizer.json must be a Hugging Face tokenizers file. {SETUP_HINT}."),
        )
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let key: [u8; 32] = Sha256::digest(&bytes).into();
    let mut cache = TOKENIZERS.lock().unwrap_or_else(|p| p.into_inner());
    cache.retain(|(_, t, _)| t.strong_count() > 0);
    if let Some((t, pad)) = cache
        .iter()
        .find(|(k, _, _)| *k == key)
        .and_then(|(_, t, pad)| Some((t.upgrade()?, *pad)))
    {
        return Ok((t, pad));
    }
    // No rayon pool in a backend: encode_batch would otherwise start one thread per CPU.
    tokenizers::utils::parallelism::set_parallelism(false);
    let mut tokenizer = Tokenizer::from_bytes(&bytes).map_err(|e| fail(e.to_string()))?;
    // The shipped tokenizer.json pads to a fixed 128 and truncates at 128: we pad ourselves to
    // the longest text of each batch and truncate at sentence-transformers' 256.
    let pad_id = tokenizer
        .get_padding()
        .map(|p| p.pad_id)
        .or_else(|| tokenizer.token_to_id("[PAD]"))
        .unwrap_or(0);
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: MAX_TOKENS,
            ..Default::default()
        }))
        .map_err(|e| RecError::external(format!("tokenizer truncation: {e}"), ""))?;
    let t = Arc::new(tokenizer);
    cache.push((key, Arc::downgrade(&t), pad_id));
    Ok((t, pad_id))
}

/// A model ready to run. Field order matters: the session is dropped before the mapping it reads.
pub struct LoadedModel {
    session: Session,
    _map: Option<Mmap>,
    tokenizer: Arc<Tokenizer>,
    pad_id: u32,
    input_names: Vec<String>,
    pub files: ModelFiles,
    pub ids: Vec<FileId>,
    pub name: String,
    pub source: String,
    pub verified: bool,
    pub load_ms: f64,
    /// ONNX Runtime's intra-op threads of this session.
    pub threads: usize,
    /// Largest run (padded tokens) since the heap was last looked at, and whether this call
    /// exceeded it or otherwise may have grown the heap: `model::settle_heap` reads the
    /// allocator's statistics (~0.1 ms) only then, or every `SETTLE_EVERY`th call.
    pub peak_tokens: usize,
    pub heap_dirty: bool,
    pub calls: u32,
}

/// Token ids of one batch, padded to its longest member.
pub struct Batch {
    pub ids: Vec<i64>,
    pub mask: Vec<i64>,
    pub types: Vec<i64>,
    pub rows: usize,
    pub seq: usize,
}

impl LoadedModel {
    /// Loads a model. `prepack`: let ONNX Runtime pre-pack the weight matrices for its GEMM
    /// kernels: about 1.75x faster inference for about 40 MiB of private memory per session
    /// (BENCHMARKS.md), so only bulk work uses it (see `model::embed`). `threads`: ONNX Runtime's
    /// intra-op threads; more than 1 only for a bulk call's own session or a cross-encoder with
    /// `recommender.rerank_threads`, whose pool is created
    /// here with every signal blocked (threads inherit the mask, so none of them ever runs a
    /// Postgres signal handler) and joined when the session is dropped.
    // The session builder's closures return ort's own error type, large by its design: boxing it
    // here would only move the allocation.
    #[allow(clippy::result_large_err)]
    pub fn load(
        files: ModelFiles,
        check: bool,
        prepack: bool,
        threads: usize,
    ) -> Result<LoadedModel> {
        let t0 = Instant::now();
        let ids = files.ids().ok_or_else(|| {
            RecError::missing(
                format!("{} model files vanished while loading", files.role),
                SETUP_HINT,
            )
        })?;
        let manifest = Manifest::load(&files.dir.parent().unwrap_or(&files.dir).to_string_lossy())?;
        let mut verified = false;
        if check {
            let m = verify(
                &files.model,
                manifest.files.get(&files.manifest_key(&files.model)),
            )?;
            let t = verify(
                &files.tokenizer,
                manifest.files.get(&files.manifest_key(&files.tokenizer)),
            )?;
            let d = match &files.data {
                Some(d) => verify(d, manifest.files.get(&files.manifest_key(d)))?,
                None => true,
            };
            verified = m && t && d;
        }
        let meta = manifest.models.get(files.role).cloned().unwrap_or_default();

        let env = runtime::environment()?;
        let fail = |what: &str, e: String| {
            RecError::external(
                format!(
                    "cannot load {} model {}: {what}: {e}",
                    files.role,
                    files.model.display()
                ),
                format!(
                    "The file is not a valid ONNX/ORT model for ONNX Runtime 1.32. {SETUP_HINT}."
                ),
            )
        };
        let is_ort = files.model.extension().is_some_and(|e| e == "ort");
        // An .ort file or a pre-packed copy was optimised when it was made; optimising again at
        // load would copy fused weights into private memory. A plain .onnx export is optimised here.
        // A pre-packed copy needs pre-packing on: its kernels then take the saved packed weights
        // from the mapped data file instead of packing their own.
        let prepack = prepack || files.prepacked();
        let level = if is_ort || files.prepacked() {
            GraphOptimizationLevel::Disable
        } else {
            GraphOptimizationLevel::All
        };
        let mut builder = Session::builder(env)
            .map_err(|e| fail("session options", e.to_string()))?
            .with_intra_threads(threads.max(1))
            .and_then(|b| b.with_inter_threads(1))
            .and_then(|b| b.with_intra_op_spinning(false))
            .and_then(|b| b.with_inter_op_spinning(false))
            .and_then(|b| b.with_prepacking(prepack))
            // ONNX Runtime's CPU arena and memory pattern: each run's activations are planned as
            // one block and kept in the arena for the next run of that size, 8-12 % faster than
            // allocating and page-faulting them tensor by tensor (BENCHMARKS.md). When the arena
            // has grown too much it is given back (`run`'s `release`, model::settle_heap).
            .and_then(|b| b.with_memory_pattern(true))
            .and_then(|b| b.with_optimization_level(level))
            .map_err(|e| fail("session options", e.to_string()))?;
        let t_session = Instant::now();
        let (session, map) = if is_ort {
            let file = File::open(&files.model).map_err(|e| fail("open", e.to_string()))?;
            // SAFETY: the mapping is read-only and lives as long as the session (same struct,
            // dropped after it). The setup script replaces model files by rename, never in place;
            // a file changed on disk is noticed by FileId before the next use and reloaded.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| fail("mmap", e.to_string()))?;
            // SAFETY: the slice points into `map`, which outlives `session` (see field order).
            let bytes: &'static [u8] =
                unsafe { std::slice::from_raw_parts(map.as_ptr(), map.len()) };
            let mut builder = builder
                .with_config_entry("session.use_ort_model_bytes_directly", "1")
                .and_then(|b| {
                    b.with_config_entry("session.use_ort_model_bytes_for_initializers", "1")
                })
                .map_err(|e| fail("session options", e.to_string()))?;
            // A session with intra-op threads starts its pool here: see `load`.
            let session = runtime::with_signals_blocked(|| builder.commit_from_memory(bytes))
                .map_err(|e| fail("ORT format", e.to_string()))?;
            (session, Some(map))
        } else {
            let session = runtime::with_signals_blocked(|| builder.commit_from_file(&files.model))
                .map_err(|e| fail("ONNX", e.to_string()))?;
            (session, None)
        };

        let session_ms = t_session.elapsed().as_secs_f64() * 1000.0;
        let t_tok = Instant::now();
        let (tokenizer, pad_id) = load_tokenizer(&files.tokenizer)?;

        pgrx::debug1!(
            "recommender: loaded {} model {}: {:.1} ms in all, session {:.1} ms, tokenizer {:.1} ms",
            files.role,
            files.model.display(),
            t0.elapsed().as_secs_f64() * 1000.0,
            session_ms,
            t_tok.elapsed().as_secs_f64() * 1000.0
        );
        let input_names = session
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .collect();
        let name = if meta.name.is_empty() {
            files
                .dir
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            meta.name
        };
        Ok(LoadedModel {
            session,
            _map: map,
            tokenizer,
            pad_id,
            input_names,
            files,
            ids,
            name,
            source: meta.source,
            verified,
            load_ms: t0.elapsed().as_secs_f64() * 1000.0,
            threads: threads.max(1),
            peak_tokens: 0,
            heap_dirty: true,
            calls: 0,
        })
    }

    /// Tokenises single texts or (query, document) pairs; returns per-input token ids and type ids.
    pub fn tokenize<'s, E: Into<EncodeInput<'s>> + Send>(
        &self,
        inputs: Vec<E>,
    ) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
        let enc = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| RecError::external(format!("tokenizer failed: {e}"), ""))?;
        Ok(enc
            .into_iter()
            .map(|e| (e.get_ids().to_vec(), e.get_type_ids().to_vec()))
            .collect())
    }

    /// Pads the selected token sequences into one batch.
    pub fn batch(&self, toks: &[&(Vec<u32>, Vec<u32>)]) -> Batch {
        let seq = toks.iter().map(|t| t.0.len()).max().unwrap_or(0).max(1);
        let rows = toks.len();
        let mut b = Batch {
            ids: vec![self.pad_id as i64; rows * seq],
            mask: vec![0; rows * seq],
            types: vec![0; rows * seq],
            rows,
            seq,
        };
        for (r, (ids, types)) in toks.iter().map(|t| (&t.0, &t.1)).enumerate() {
            for (i, (&id, &ty)) in ids.iter().zip(types.iter()).enumerate() {
                b.ids[r * seq + i] = id as i64;
                b.mask[r * seq + i] = 1;
                b.types[r * seq + i] = ty as i64;
            }
        }
        b
    }

    /// Runs the model on a batch and returns its first output as (shape, data). `release`: shrink
    /// ONNX Runtime's arena at the end of the run, handing the activations it keeps back to the
    /// heap instead of keeping them for the backend's lifetime.
    pub fn run(&mut self, b: &Batch, release: bool) -> Result<(Vec<i64>, Vec<f32>)> {
        let label = format!("{} model {}", self.files.role, self.files.model.display());
        let fail = |e: String| RecError::external(format!("inference failed in {label}: {e}"), "");
        let shape = [b.rows as i64, b.seq as i64];
        if b.rows * b.seq > self.peak_tokens {
            self.peak_tokens = b.rows * b.seq;
            self.heap_dirty = true;
        }
        let mut inputs = Vec::with_capacity(3);
        for name in &self.input_names {
            let data = match name.as_str() {
                "input_ids" => b.ids.clone(),
                "attention_mask" => b.mask.clone(),
                "token_type_ids" => b.types.clone(),
                other => return Err(fail(format!("unexpected model input \"{other}\" (expected input_ids, attention_mask, token_type_ids)"))),
            };
            let t = Tensor::from_array((shape, data)).map_err(|e| fail(e.to_string()))?;
            inputs.push((name.clone(), t));
        }
        let shrink = if release {
            let mut opts = RunOptions::new().map_err(|e| fail(e.to_string()))?;
            opts.set("memory.enable_memory_arena_shrinkage", "cpu:0")
                .map_err(|e| fail(e.to_string()))?;
            Some(opts)
        } else {
            None
        };
        let outputs = match &shrink {
            Some(opts) => self.session.run_with_options(inputs, opts),
            None => self.session.run(inputs),
        }
        .map_err(|e| fail(e.to_string()))?;
        let first = outputs
            .values()
            .next()
            .ok_or_else(|| fail("the model has no output".into()))?;
        let (shape, data) = first
            .try_extract_tensor::<f32>()
            .map_err(|e| fail(e.to_string()))?;
        Ok((shape.to_vec(), data.to_vec()))
    }
}
