//! Phase 1, the limit: the raw token in process (AES-GCM encryption, key generation and
//! signing), what cks-sim is compared with.

use crate::*;

// ---------------------------------------------------------------------------------------------
// 1. The raw token
// ---------------------------------------------------------------------------------------------

/// The raw token's handles, kept for the figures measured beside cks-sim's.
pub(crate) struct RawToken {
    pub(crate) p: Pkcs11,
    pub(crate) slot: Slot,
    pub(crate) key: ObjectHandle,
    /// A logged-in session on the raw token, kept for the key-generation figure, which is
    /// measured right before cks-sim's CreateKey so that both see the same disk weather.
    pub(crate) anchor: Session,
}

/// Phase 1's own figures (the raw single-session encryption is measured in phase 2,
/// interleaved with cks-sim's Encrypt).
pub(crate) struct RawFigures {
    pub(crate) pool: usize,
    pub(crate) enc32_n: f64,
    pub(crate) enc4k_1: f64,
    pub(crate) enc4k_n: f64,
    pub(crate) enc32_fixed_iv: f64,
    /// The token's own cost of the largest scale point's working set, if there is one.
    pub(crate) scale: Option<RawScale>,
}

/// `BENCH_RAW_ONLY=1`: the single-session encryption and key generation, alone.
pub(crate) struct RawOnly {
    pub(crate) enc32_1: f64,
    pub(crate) generate: RawGen,
}

/// Raw encryption round-robin over many session keys against 10 of them, interleaved.
pub(crate) struct RawScale {
    pub(crate) keys: usize,
    /// Encryptions per second over the many keys, and over 10 of them.
    pub(crate) many_rps: f64,
    pub(crate) few_rps: f64,
    /// The many keys' rate over the 10 keys'.
    pub(crate) ratio: f64,
    /// The spread of that ratio over the A B B A blocks.
    pub(crate) spread: String,
    /// What the large working set adds to one encryption, in µs.
    pub(crate) us_added: f64,
}

/// Raw `C_GenerateKey` of token AES keys on one session: what was done and what it cost.
#[derive(Default, Clone, Copy)]
pub(crate) struct RawGen {
    pub(crate) keys: u64,
    pub(crate) secs: f64,
    /// This process's CPU time meanwhile (user, system), in seconds.
    pub(crate) cpu: (f64, f64),
}

impl RawGen {
    /// Generate up to `max` keys (at most `MAX_RAW_KEYS`), for at most `dur`.
    pub(crate) fn run(anchor: &Session, max: u64, dur: Duration) -> Res<RawGen> {
        let cpu0 = cpu_secs("self");
        let t0 = Instant::now();
        let mut keys = 0u64;
        while keys < max.min(MAX_RAW_KEYS) && t0.elapsed() < dur {
            anchor.generate_key(
                &Mechanism::AesKeyGen,
                &cks_sim::hsm::token::key_template(
                    "bench-raw-generated",
                    uuid::Uuid::new_v4().as_bytes(),
                ),
            )?;
            keys += 1;
        }
        let cpu = match (cpu0, cpu_secs("self")) {
            (Some(a), Some(b)) => (b.0 - a.0, b.1 - a.1),
            _ => (0.0, 0.0),
        };
        Ok(RawGen {
            keys,
            secs: t0.elapsed().as_secs_f64(),
            cpu,
        })
    }

    pub(crate) fn add(&mut self, o: RawGen) {
        self.keys += o.keys;
        self.secs += o.secs;
        self.cpu.0 += o.cpu.0;
        self.cpu.1 += o.cpu.1;
    }

    pub(crate) fn rate(&self) -> f64 {
        self.keys as f64 / self.secs.max(1e-9)
    }

    pub(crate) fn note(&self) -> String {
        let n = self.keys.max(1) as f64;
        format!(
            "{} keys, D4 template [CPU/key: {:.0} µs ({:.0} user + {:.0} sys)]",
            thousands(self.keys),
            (self.cpu.0 + self.cpu.1) * 1e6 / n,
            self.cpu.0 * 1e6 / n,
            self.cpu.1 * 1e6 / n
        )
    }
}

/// One cks-sim Encrypt's PKCS#11 work: `C_GenerateRandom` (12-byte IV), then `C_EncryptInit` +
/// `C_Encrypt` (AES-GCM, 17-byte AAD, 128-bit tag) — cryptoki's `encrypt` is what the pool runs.
pub(crate) fn seal(
    s: &Session,
    key: ObjectHandle,
    aad: &[u8],
    pt: &[u8],
    fixed_iv: bool,
) -> Res<usize> {
    let mut iv = if fixed_iv {
        vec![7u8; 12]
    } else {
        s.generate_random_vec(12)?
    };
    let params = GcmParams::new(&mut iv, aad, 128.into())?;
    Ok(s.encrypt(&Mechanism::AesGcm(params), key, pt)?.len())
}

/// A raw encryption workload: `threads` sessions, each sealing `pt` with `key` in a loop.
pub(crate) struct RawEnc<'a> {
    pub(crate) p: &'a Pkcs11,
    pub(crate) slot: Slot,
    /// Used round-robin.
    pub(crate) keys: &'a [ObjectHandle],
    pub(crate) pt: &'a [u8],
    pub(crate) threads: usize,
    pub(crate) fixed_iv: bool,
}

impl RawToken {
    /// The single-session, single-key encryption of `pt` (the figure cks-sim is compared with).
    pub(crate) fn one_session<'a>(&'a self, pt: &'a [u8]) -> RawEnc<'a> {
        RawEnc {
            p: &self.p,
            slot: self.slot,
            keys: std::slice::from_ref(&self.key),
            pt,
            threads: 1,
            fixed_iv: false,
        }
    }
}

/// What the raw single-session figure does per operation.
pub(crate) const RAW_ONE_NOTE: &str =
    "C_GenerateRandom(12) + C_EncryptInit + C_Encrypt, as cks-sim does";

impl RawEnc<'_> {
    /// The best rate of [`runs`] runs of `dur` each (after a warm-up).
    pub(crate) fn rate(&self, dur: Duration) -> Res<f64> {
        let mut best = 0f64;
        for _ in 0..runs() {
            best = best.max(self.run_once(dur)?);
        }
        Ok(best)
    }

    pub(crate) fn run_once(&self, dur: Duration) -> Res<f64> {
        let (n, measured) = self.measure(WARMUP.min(dur / 2), dur)?;
        Ok(n as f64 / measured.as_secs_f64().max(1e-9))
    }

    /// Encrypt for `warm` (not counted), then for `dur`: the operations done in the measured
    /// window and its length.
    pub(crate) fn measure(&self, warm: Duration, dur: Duration) -> Res<(u64, Duration)> {
        let RawEnc {
            p,
            slot,
            keys,
            pt,
            threads,
            fixed_iv,
        } = *self;
        let aad = [1u8; 17];
        let total = AtomicU64::new(0);
        let start = Instant::now();
        let warm_end = start + warm;
        let end = warm_end + dur;
        std::thread::scope(|sc| -> Res<()> {
            let mut hs = Vec::new();
            for _ in 0..threads {
                let (p, total) = (p.clone(), &total);
                hs.push(sc.spawn(move || -> Res<()> {
                    let s = p.open_rw_session(slot)?;
                    let (mut n, mut i) = (0u64, 0usize);
                    loop {
                        let now = Instant::now();
                        if now >= end || n >= MAX_RAW_OPS {
                            break;
                        }
                        seal(&s, keys[i % keys.len()], &aad, pt, fixed_iv)?;
                        i += 1;
                        if now >= warm_end {
                            n += 1;
                        }
                    }
                    total.fetch_add(n, Ordering::Relaxed);
                    Ok(())
                }));
            }
            for h in hs {
                h.join().map_err(|_| "raw encrypt thread panicked")??;
            }
            Ok(())
        })?;
        let measured = Instant::now().min(end).saturating_duration_since(warm_end);
        Ok((total.load(Ordering::Relaxed), measured))
    }
}

/// The module under test and its soft token. The bench makes its own tokens (`C_InitToken`),
/// as the servers do, so only a soft token can run it.
pub(crate) fn bench_module() -> Res<(SoftToken, PathBuf)> {
    let explicit = std::env::var_os("CKS_SIM_PKCS11_MODULE").map(PathBuf::from);
    let path = cks_sim::hsm::module::locate(explicit.as_deref())?;
    let kind = SoftToken::detect(explicit.as_deref()).ok_or_else(|| {
        format!(
            "{}: the bench creates its own tokens, so it runs on SoftHSM2 or kryoptic only",
            path.display()
        )
    })?;
    Ok((kind, path))
}

pub(crate) fn measure_raw(
    set: &Settings,
    kind: SoftToken,
    path: &Path,
) -> Res<(RawToken, RawFigures)> {
    let var = kind.env_var();
    let conf = PathBuf::from(
        std::env::var_os(var).ok_or_else(|| format!("{var} is not set (scripts/bench sets it)"))?,
    );
    // Written when missing, with the servers' settings (kryoptic: the raw token and a spare).
    kind.write_conf_if_missing(&conf, 2)?;
    progress(&format!(
        "raw token: {} module {}, {var} {}",
        kind.name(),
        path.display(),
        conf.display()
    ));
    let module = Module::load(path)?;
    let label = format!("bench-{}", short_id());
    Provisioner::SoftToken.ensure_token(&module, &label, "bench-so-pin", USER_PIN)?;
    let slot = module.find_token(&label)?;
    // An independent cryptoki handle on the same (already initialized) module.
    let p = Pkcs11::new(path)?;
    let _ = p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let anchor = p.open_rw_session(slot)?;
    anchor.login(UserType::User, Some(&AuthPin::from(USER_PIN.to_string())))?;
    let key = anchor.generate_key(
        &Mechanism::AesKeyGen,
        &cks_sim::hsm::token::key_template("bench-raw-key", uuid::Uuid::new_v4().as_bytes()),
    )?;
    // As many sessions as cks-sim's pool uses by default ([hsm] max_sessions).
    let pool = cks_sim::config::Config::from_parts(
        cks_sim::config::FileConfig::default(),
        &cks_sim::config::Overrides::default(),
    )?
    .max_sessions;
    let d = set.secs;
    let pt32 = [0x42u8; 32];
    let pt4k = vec![0x42u8; 4096];
    progress("raw token: AES-GCM encrypt");
    let one_key = |pt: &[u8], threads: usize, fixed_iv: bool| {
        RawEnc {
            p: &p,
            slot,
            keys: std::slice::from_ref(&key),
            pt,
            threads,
            fixed_iv,
        }
        .rate(d)
    };
    let enc32_n = one_key(&pt32, pool, false)?;
    let enc4k_1 = one_key(&pt4k, 1, false)?;
    let enc4k_n = one_key(&pt4k, pool, false)?;
    let enc32_fixed_iv = one_key(&pt32, 1, true)?;
    // The token's own cost of a large working set, in the shape of cks-sim's scale target: as
    // many session keys as the largest scale point, round-robin, interleaved in slices with
    // 10 of them (what cks-sim's scale figures pay on top of).
    let many = set.scale.iter().copied().max().unwrap_or(0);
    let mut scale = None;
    if many > SMALL_KEYS {
        progress(&format!(
            "raw token: {many} session keys, encrypt round-robin, interleaved with {SMALL_KEYS}"
        ));
        let mut keys = Vec::with_capacity(many);
        for _ in 0..many {
            let t: Vec<Attribute> = cks_sim::hsm::token::key_template(
                "bench-raw-many",
                uuid::Uuid::new_v4().as_bytes(),
            )
            .into_iter()
            .map(|a| match a {
                Attribute::Token(_) => Attribute::Token(false),
                a => a,
            })
            .collect();
            keys.push(anchor.generate_key(&Mechanism::AesKeyGen, &t)?);
        }
        let enc = |keys| RawEnc {
            p: &p,
            slot,
            keys,
            pt: &pt32,
            threads: 1,
            fixed_iv: false,
        };
        let (all, few) = (enc(&keys), enc(&keys[..SMALL_KEYS]));
        let pair = tokio::runtime::Builder::new_current_thread()
            .build()?
            .block_on(interleave(Side::Raw(&all, d), Side::Raw(&few, d), d))?;
        scale = Some(RawScale {
            keys: many,
            many_rps: pair.a.rps,
            few_rps: pair.b.rps,
            ratio: pair.ratio(),
            spread: pair.spread(),
            us_added: 1e6 / pair.a.rps.max(1.0) - 1e6 / pair.b.rps.max(1.0),
        });
        for k in keys {
            anchor.destroy_object(k)?;
        }
    }
    let token = RawToken {
        p,
        slot,
        key,
        anchor,
    };
    let figures = RawFigures {
        pool,
        enc32_n,
        enc4k_1,
        enc4k_n,
        enc32_fixed_iv,
        scale,
    };
    Ok((token, figures))
}

/// `BENCH_RAW_ONLY=1`: the single-session encryption and key generation.
pub(crate) fn measure_raw_only(set: &Settings, raw: &RawToken) -> Res<RawOnly> {
    let pt = [0x42u8; 32];
    let enc32_1 = raw.one_session(&pt).rate(set.secs)?;
    let generate = RawGen::run(&raw.anchor, MAX_RAW_KEYS, set.secs)?;
    Ok(RawOnly { enc32_1, generate })
}

// ---------------------------------------------------------------------------------------
// Signing: RSA_2048 and ECC_NIST_P256 keys over HTTP against the raw token's signing rate (run
// last on the restarted server). The raw figure is one session; cks-sim's token threads may
// spread slow calls (RSA) over more than one.

/// A key pair of the raw token for signing: session objects on the anchor session.
pub(crate) fn raw_sign_key(s: &Session, rsa: bool) -> Res<ObjectHandle> {
    use cryptoki::object::{KeyType, ObjectClass};
    let (mech, mut public, kt) = if rsa {
        (
            Mechanism::RsaPkcsKeyPairGen,
            vec![
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
            ],
            KeyType::RSA,
        )
    } else {
        (
            Mechanism::EccKeyPairGen,
            // DER OID of P-256.
            vec![Attribute::EcParams(vec![
                0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
            ])],
            KeyType::EC,
        )
    };
    public.extend([
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(kt),
        Attribute::Token(false),
        Attribute::Verify(true),
    ]);
    let private = [
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(kt),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
    ];
    Ok(s.generate_key_pair(&mech, &public, &private)?.1)
}

/// The mechanism cks-sim signs a SHA-256 digest with for RSASSA_PSS_SHA_256 / ECDSA_SHA_256.
pub(crate) fn raw_sign_mechanism(rsa: bool) -> Mechanism<'static> {
    use cryptoki::mechanism::MechanismType;
    use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
    if rsa {
        Mechanism::RsaPkcsPss(PkcsPssParams {
            hash_alg: MechanismType::SHA256,
            mgf: PkcsMgfType::MGF1_SHA256,
            s_len: 32.into(),
        })
    } else {
        Mechanism::Ecdsa
    }
}

/// The raw token signing a 32-byte digest on one session, as one side of an interleaved pair.
pub(crate) struct RawSign<'a> {
    pub(crate) session: &'a Session,
    pub(crate) key: ObjectHandle,
    pub(crate) rsa: bool,
}

impl RawSign<'_> {
    /// Sign for `warm` (not counted), then for `dur`: the signatures made and the time taken.
    pub(crate) fn measure(&self, warm: Duration, dur: Duration) -> Res<(u64, Duration)> {
        let mech = raw_sign_mechanism(self.rsa);
        let digest = [0x5au8; 32];
        let t0 = Instant::now();
        while t0.elapsed() < warm {
            self.session.sign(&mech, self.key, &digest)?;
        }
        let (t1, mut n) = (Instant::now(), 0u64);
        while t1.elapsed() < dur {
            self.session.sign(&mech, self.key, &digest)?;
            n += 1;
        }
        Ok((n, t1.elapsed()))
    }
}
