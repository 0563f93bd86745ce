//! The tracing guide shows only YAML that works: every ```yaml block in
//! `docs/guides/tier2-tracing.md` is marked with the example file it comes
//! from, appears in that file verbatim, and that file validates.

use std::path::Path;

use elspeth::schema::validate::{ValidateOptions, validate_file};

const GUIDE: &str = "docs/guides/tier2-tracing.md";
const MARKER: &str = "<!-- example: ";

/// (line of the block, example path, snippet) for every yaml block.
fn yaml_blocks(text: &str) -> Vec<(usize, Option<String>, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_start() == "```yaml" {
            let marker = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().strip_prefix(MARKER))
                .and_then(|l| l.strip_suffix("-->"))
                .map(|p| p.trim().to_string());
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].trim_start() == "```")
                .unwrap_or_else(|| panic!("{GUIDE}:{}: unclosed code block", i + 1));
            blocks.push((i + 1, marker, lines[i + 1..end].join("\n")));
            i = end;
        }
        i += 1;
    }
    blocks
}

#[test]
fn every_yaml_snippet_is_a_validated_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(GUIDE)).unwrap();
    let blocks = yaml_blocks(&text);
    assert!(
        blocks.len() >= 6,
        "the guide shows its YAML ({} blocks)",
        blocks.len()
    );
    for (line, example, snippet) in blocks {
        let example = example.unwrap_or_else(|| {
            panic!("{GUIDE}:{line}: a yaml block needs `{MARKER}examples/... -->` right above it")
        });
        let path = root.join(&example);
        let file = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{GUIDE}:{line}: {example}: {e}"));
        assert!(
            file.contains(&snippet),
            "{GUIDE}:{line}: the snippet is not in {example} as written:\n{snippet}"
        );
        let validated = validate_file(&path, &ValidateOptions::default());
        assert!(
            !validated.has_errors(),
            "{example} is invalid:\n{}",
            validated.render()
        );
    }
}

#[test]
fn the_marker_parser_sees_unmarked_blocks() {
    let blocks =
        yaml_blocks("text\n\n```yaml\na: 1\n```\n<!-- example: x.yaml -->\n```yaml\nb: 2\n```\n");
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].1, None);
    assert_eq!(blocks[1].1.as_deref(), Some("x.yaml"));
    assert_eq!(blocks[1].2, "b: 2");
}
