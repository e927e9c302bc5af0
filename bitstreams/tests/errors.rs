//! A failing or missing tool: the error names the step, the log file and the log line that
//! explains it. (Its own test binary: it sets TERN_YOSYS for the whole process.)

use tern_bitstreams::board::Boards;
use tern_bitstreams::tools::Quiet;
use tern_bitstreams::{estimate, SynthError};
use tern_hdl::HdlOptions;
use tern_spec::ArrayConfig;

#[test]
fn failing_and_missing_tools_are_named() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("errors");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // a fake yosys: writes an ERROR line to the file after -l, then fails
    let fake = dir.join("fake-yosys");
    std::fs::write(
        &fake,
        "#!/bin/sh\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = -l ]; then log=\"$2\"; fi\n  shift\ndone\nprintf '1. Executing Verilog frontend\\nrtl/x.v:7: ERROR: fake syntax error near `wire`\\n' > \"$log\"\necho 'End of script' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let boards = Boards::builtin().unwrap();
    let board = boards.get("ecp5-85f").unwrap();
    let cfg = ArrayConfig::builtin("small").unwrap();

    std::env::set_var("TERN_YOSYS", &fake);
    let e = estimate(board, &cfg, HdlOptions::default(), &dir.join("out"), &Quiet).unwrap_err();
    assert_eq!(e.step(), Some("synth"));
    let msg = e.to_string();
    assert!(msg.contains("rtl/x.v:7: ERROR: fake syntax error"), "{msg}");
    assert!(msg.contains("logs/02-synth.log"), "{msg}");
    assert!(matches!(e, SynthError::StepFailed { .. }));

    std::env::set_var("TERN_YOSYS", dir.join("no-such-yosys"));
    let e = estimate(
        board,
        &cfg,
        HdlOptions::default(),
        &dir.join("out2"),
        &Quiet,
    )
    .unwrap_err();
    assert!(matches!(e, SynthError::ToolMissing { .. }), "{e}");
    assert_eq!(e.step(), Some("synth"));
    assert!(e.to_string().contains("make setup-synth"), "{e}");
    std::env::remove_var("TERN_YOSYS");
}
