//! `cryptoutil kms barrier generate-shares`: fresh unseal shares for `barrier.unseal.mode: shares`.

use std::io::Write;

use cryptoutil_kms::barrier::{encode_share, generate_shares as fresh_shares};

use crate::Failure;
use crate::cli::GenerateSharesArgs;

/// Most shares one command writes (the barrier wraps its root key for each M-combination).
const MAX_SHARES: usize = 16;

pub fn generate_shares(args: &GenerateSharesArgs) -> Result<(), Failure> {
    if !(1..=MAX_SHARES).contains(&args.count) {
        return Err(Failure::Usage(format!(
            "--count must be between 1 and {MAX_SHARES}"
        )));
    }
    let shares = fresh_shares(args.count, args.bytes).map_err(|e| Failure::Usage(e.to_string()))?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure::Runtime(format!("cannot create {}: {e}", args.out.display())))?;
    for (i, share) in shares.iter().enumerate() {
        let path = args.out.join(format!("share-{}", i + 1));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(|e| {
            Failure::Runtime(format!(
                "cannot create {} (never overwritten): {e}",
                path.display()
            ))
        })?;
        file.write_all(encode_share(share).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", path.display())))?;
    }
    eprintln!(
        "wrote {} share files to {}; list them in index order under barrier.unseal.files",
        args.count,
        args.out.display()
    );
    Ok(())
}
