//! The XML of ASC MHL v2: manifests (`<hashlist>`) and the chain (`<ascmhldirectory>`), written with quick-xml's
//! writer in the element order the XSD requires, read into a small element tree.

use std::io::Write;
use std::path::Path;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::hashes::HashFormat;
use super::{Action, ChainEntry, FileEntry, HashEntry, Manifest, Process};
use crate::error::{Error, Result};

pub const NS: &str = "urn:ASC:MHL:v2.0";
pub const NS_DIRECTORY: &str = "urn:ASC:MHL:DIRECTORY:v2.0";

fn io_err(e: std::io::Error) -> Error {
    Error::Invalid(format!("writing ASC MHL XML: {e}"))
}

/// An indented UTF-8 XML document: the declaration, what `root` writes, and a final newline.
fn document(root: impl FnOnce(&mut Writer<Vec<u8>>) -> std::io::Result<()>) -> Result<Vec<u8>> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None))).map_err(io_err)?;
    root(&mut w).map_err(io_err)?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}

/// The bytes of one manifest.
pub fn manifest_xml(m: &Manifest) -> Result<Vec<u8>> {
    document(|w| {
        w.create_element("hashlist").with_attributes([("version", "2.0"), ("xmlns", NS)]).write_inner_content(|w| {
            w.create_element("creatorinfo").write_inner_content(|w| {
                w.create_element("creationdate").write_text_content(BytesText::new(&m.creation_date))?;
                w.create_element("hostname").write_text_content(BytesText::new(&m.hostname))?;
                w.create_element("tool")
                    .with_attribute(("version", m.tool_version.as_str()))
                    .write_text_content(BytesText::new(&m.tool))?;
                Ok(())
            })?;
            w.create_element("processinfo").write_inner_content(|w| {
                w.create_element("process").write_text_content(BytesText::new(m.process.as_str()))?;
                if !m.ignore.is_empty() {
                    w.create_element("ignore").write_inner_content(|w| {
                        for p in &m.ignore {
                            w.create_element("pattern").write_text_content(BytesText::new(p))?;
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
            // The XSD wants at least one entry in <hashes>: an empty folder has none.
            if !m.files.is_empty() {
                w.create_element("hashes").write_inner_content(|w| {
                    for f in &m.files {
                        write_hash(w, f)?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
        Ok(())
    })
}

fn write_hash<W: Write>(w: &mut Writer<W>, f: &FileEntry) -> std::io::Result<()> {
    w.create_element("hash").write_inner_content(|w| {
        let size = f.size.map(|s| s.to_string());
        let mut path = w.create_element("path");
        if let Some(s) = &size {
            path = path.with_attribute(("size", s.as_str()));
        }
        if let Some(d) = &f.mtime {
            path = path.with_attribute(("lastmodificationdate", d.as_str()));
        }
        path.write_text_content(BytesText::new(&f.path))?;
        let mut hashes: Vec<&HashEntry> = f.hashes.iter().collect();
        hashes.sort_by_key(|h| h.format);
        for h in hashes {
            let mut el = w.create_element(h.format.name());
            if let Some(a) = h.action {
                el = el.with_attribute(("action", a.as_str()));
            }
            if let Some(d) = &h.hashdate {
                el = el.with_attribute(("hashdate", d.as_str()));
            }
            el.write_text_content(BytesText::new(&h.value))?;
        }
        if let Some(p) = &f.previous_path {
            w.create_element("previousPath").write_text_content(BytesText::new(p))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The bytes of `ascmhl_chain.xml`.
pub fn chain_xml(entries: &[ChainEntry]) -> Result<Vec<u8>> {
    document(|w| {
        w.create_element("ascmhldirectory").with_attribute(("xmlns", NS_DIRECTORY)).write_inner_content(|w| {
            for e in entries {
                let n = e.number.to_string();
                w.create_element("hashlist").with_attribute(("sequencenr", n.as_str())).write_inner_content(|w| {
                    w.create_element("path").write_text_content(BytesText::new(&e.path))?;
                    w.create_element("c4").write_text_content(BytesText::new(&e.c4))?;
                    Ok(())
                })?;
            }
            Ok(())
        })?;
        Ok(())
    })
}

/// One parsed element: its local name, attributes (local names), text and children.
#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    fn text_of(&self, name: &str) -> Option<String> {
        self.child(name).map(|c| c.text.trim().to_string())
    }
}

/// Parses a whole XML document into its root element.
pub fn parse(bytes: &[u8], what: &Path) -> Result<Element> {
    let bad = |m: String| Error::Invalid(format!("{}: not a readable ASC MHL file: {m}", what.display()));
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut stack: Vec<Element> = vec![Element::default()];
    let local = |n: &[u8]| {
        let s = String::from_utf8_lossy(n);
        s.rsplit(':').next().unwrap_or_default().to_string()
    };
    loop {
        let ev = reader.read_event().map_err(|e| bad(e.to_string()))?;
        match ev {
            Event::Start(ref el) | Event::Empty(ref el) => {
                let mut e = Element { name: local(el.name().as_ref()), ..Default::default() };
                for a in el.attributes() {
                    let a = a.map_err(|e| bad(e.to_string()))?;
                    let v = a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|e| bad(e.to_string()))?;
                    e.attrs.push((local(a.key.as_ref()), v.into_owned()));
                }
                if matches!(ev, Event::Start(_)) {
                    stack.push(e);
                } else if let Some(top) = stack.last_mut() {
                    top.children.push(e);
                }
            }
            Event::End(_) => {
                if stack.len() < 2 {
                    return Err(bad("unbalanced end tag".into()));
                }
                if let Some(done) = stack.pop() {
                    if let Some(top) = stack.last_mut() {
                        top.children.push(done);
                    }
                }
            }
            Event::Text(t) => {
                let s = t.xml10_content().map_err(|e| bad(e.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().map_err(|e| bad(e.to_string()))? {
                    Some(c) => c.to_string(),
                    None => match r.as_ref() as &[u8] {
                        b"amp" => "&".into(),
                        b"lt" => "<".into(),
                        b"gt" => ">".into(),
                        b"quot" => "\"".into(),
                        b"apos" => "'".into(),
                        other => return Err(bad(format!("unknown entity &{};", String::from_utf8_lossy(other)))),
                    },
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err(bad("the document ends inside an element".into()));
    }
    stack.pop().and_then(|mut doc| doc.children.pop()).ok_or_else(|| bad("no root element".into()))
}

/// Reads a manifest's element tree.
pub fn manifest_from(root: &Element, what: &Path) -> Result<Manifest> {
    let bad = |m: &str| Error::Invalid(format!("{}: not an ASC MHL manifest: {m}", what.display()));
    if root.name != "hashlist" {
        return Err(bad(&format!("root element is <{}>, not <hashlist>", root.name)));
    }
    let ci = root.child("creatorinfo").ok_or_else(|| bad("no <creatorinfo>"))?;
    let pi = root.child("processinfo").ok_or_else(|| bad("no <processinfo>"))?;
    let tool = ci.child("tool");
    let process = pi.text_of("process").unwrap_or_default();
    let mut m = Manifest {
        creation_date: ci.text_of("creationdate").unwrap_or_default(),
        hostname: ci.text_of("hostname").unwrap_or_default(),
        tool: tool.map(|t| t.text.trim().to_string()).unwrap_or_default(),
        tool_version: tool.and_then(|t| t.attr("version")).unwrap_or_default().to_string(),
        process: Process::parse(&process).ok_or_else(|| bad(&format!("unknown process {process:?}")))?,
        ignore: pi
            .child("ignore")
            .map(|i| i.children_named("pattern").map(|p| p.text.trim().to_string()).collect())
            .unwrap_or_default(),
        files: Vec::new(),
    };
    if let Some(hashes) = root.child("hashes") {
        for h in hashes.children_named("hash") {
            let path = h.child("path").ok_or_else(|| bad("a <hash> without <path>"))?;
            let size = match path.attr("size") {
                Some(s) => Some(s.parse::<u64>().map_err(|_| bad(&format!("size {s:?} is not a number")))?),
                None => None,
            };
            let mut entry = FileEntry {
                path: path.text.trim().to_string(),
                size,
                mtime: path.attr("lastmodificationdate").map(str::to_string),
                hashes: Vec::new(),
                previous_path: h.text_of("previousPath"),
            };
            for c in &h.children {
                if let Some(format) = HashFormat::from_name(&c.name) {
                    let action = match c.attr("action") {
                        Some(a) => Some(Action::parse(a).ok_or_else(|| bad(&format!("unknown action {a:?}")))?),
                        None => None,
                    };
                    entry.hashes.push(HashEntry {
                        format,
                        value: c.text.trim().to_string(),
                        action,
                        hashdate: c.attr("hashdate").map(str::to_string),
                    });
                }
            }
            m.files.push(entry);
        }
    }
    Ok(m)
}

/// Reads the chain's element tree.
pub fn chain_from(root: &Element, what: &Path) -> Result<Vec<ChainEntry>> {
    if root.name != "ascmhldirectory" {
        return Err(Error::Invalid(format!(
            "{}: not an ASC MHL chain: root element is <{}>",
            what.display(),
            root.name
        )));
    }
    let mut out = Vec::new();
    for h in root.children_named("hashlist") {
        let number = h.attr("sequencenr").and_then(|s| s.parse().ok()).unwrap_or(0);
        out.push(ChainEntry {
            number,
            path: h.text_of("path").unwrap_or_default(),
            c4: h.text_of("c4").unwrap_or_default(),
        });
    }
    Ok(out)
}
