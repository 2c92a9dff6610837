//! Events for local evaluation: flat JSON objects as they are, and Windows EVTX
//! JSON (`{"Event": {"System": …, "EventData": …}}`, as evtx_dump and the
//! SigmaHQ regression data write it) mapped to the field names Sigma rules use.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("event {index}: not JSON ({reason}) at line {line}, column {column}")]
    NotJson {
        index: usize,
        reason: String,
        line: usize,
        column: usize,
    },
    #[error("event {index}: a JSON {kind}, not an object")]
    NotAnObject { index: usize, kind: &'static str },
}

/// Every JSON value in `text` (one document, a JSON Lines file, or values
/// simply one after another), normalized. An array at top level is a list of
/// events.
pub fn parse_event_stream(text: &str) -> Result<Vec<Value>, EventError> {
    let mut out = Vec::new();
    let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    for (i, item) in stream.enumerate() {
        let v = item.map_err(|e| EventError::NotJson {
            index: i + 1,
            reason: e.classify_name(),
            line: e.line(),
            column: e.column(),
        })?;
        match v {
            Value::Array(items) => {
                for item in items {
                    let index = out.len() + 1;
                    out.push(normalize_event(item, index)?);
                }
            }
            other => {
                let index = out.len() + 1;
                out.push(normalize_event(other, index)?);
            }
        }
    }
    Ok(out)
}

trait Classify {
    fn classify_name(&self) -> String;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> String {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "data error",
            serde_json::error::Category::Eof => "unexpected end",
        }
        .to_owned()
    }
}

/// A flat event as Sigma sees it. EVTX JSON becomes its `EventData` (or
/// `UserData`) fields plus `EventID`, `Channel`, `Computer`, `Provider_Name`,
/// `Level`, `Task`, `Keywords`, `EventRecordID` and `TimeCreated` from `System`.
/// An `EventData` name with spaces (Defender's `Process Name`) is also
/// reachable without them (`ProcessName`), as `docs/rules.md` describes.
pub fn normalize_event(v: Value, index: usize) -> Result<Value, EventError> {
    let Value::Object(map) = v else {
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        return Err(EventError::NotAnObject { index, kind });
    };
    match map.get("Event") {
        Some(Value::Object(event)) if event.contains_key("System") => {
            Ok(Value::Object(flatten_evtx(event)))
        }
        _ => Ok(Value::Object(map)),
    }
}

fn attribute<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get("#attributes").and_then(|a| a.get(name))
}

fn flatten_evtx(event: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(system) = event.get("System") {
        for key in [
            "EventID",
            "Channel",
            "Computer",
            "Level",
            "Task",
            "Opcode",
            "Keywords",
            "EventRecordID",
            "Version",
        ] {
            if let Some(v) = system.get(key) {
                // `EventID` may be `{"#text": 4688, "#attributes": {...}}`.
                let v = v.get("#text").unwrap_or(v);
                out.insert(key.to_owned(), v.clone());
            }
        }
        if let Some(name) = system.get("Provider").and_then(|p| attribute(p, "Name")) {
            out.insert("Provider_Name".to_owned(), name.clone());
        }
        if let Some(t) = system
            .get("TimeCreated")
            .and_then(|t| attribute(t, "SystemTime"))
        {
            out.insert("TimeCreated".to_owned(), t.clone());
        }
    }
    for section in ["EventData", "UserData"] {
        match event.get(section) {
            Some(Value::Object(fields)) => {
                for (k, v) in fields {
                    if k == "#attributes" {
                        continue;
                    }
                    // `UserData` nests one element named after the event.
                    if section == "UserData"
                        && let Value::Object(inner) = v
                    {
                        for (ik, iv) in inner {
                            if ik != "#attributes" {
                                out.insert(ik.clone(), iv.clone());
                            }
                        }
                        continue;
                    }
                    out.insert(k.clone(), v.clone());
                }
            }
            Some(other) if !other.is_null() => {
                out.insert(section.to_owned(), other.clone());
            }
            _ => {}
        }
    }
    add_unspaced_names(&mut out);
    out
}

/// Windows writes some `EventData` names with spaces that its ETW manifests do
/// not have (Microsoft Defender's `Process Name`, `Threat Name`, `Source
/// Name`), and Sigma rules use the manifest's names (`ProcessName`,
/// `ThreatName`, `SourceName`). SigmaHQ's regression runs match one to the
/// other: its `windefend` rules fire on recorded Defender events that only
/// carry the spaced names. So each name with spaces is also put under the name
/// with every space (U+0020) removed, letter case kept.
///
/// The spaced name stays, so a rule written against `Source Name` still
/// matches. A field that the event itself names (from `System` or
/// `EventData`) is never overwritten: if both `ProcessName` and `Process Name`
/// are present, `ProcessName` keeps its own value. If two spaced names collapse
/// to the same name (`Process Name`, `ProcessN ame`), neither gets it, rather
/// than letting the JSON key order choose which value a rule sees.
fn add_unspaced_names(out: &mut Map<String, Value>) {
    let mut unspaced: BTreeMap<String, Option<&Value>> = BTreeMap::new();
    for (name, value) in out.iter() {
        if !name.contains(' ') {
            continue;
        }
        let bare: String = name.chars().filter(|c| *c != ' ').collect();
        if bare.is_empty() || out.contains_key(&bare) {
            continue;
        }
        unspaced
            .entry(bare)
            .and_modify(|seen| *seen = None)
            .or_insert(Some(value));
    }
    let unspaced: Vec<(String, Value)> = unspaced
        .into_iter()
        .filter_map(|(bare, value)| value.map(|v| (bare, v.clone())))
        .collect();
    out.extend(unspaced);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evtx_is_flattened_and_flat_events_pass_through() {
        let evtx = json!({"Event": {"System": {"EventID": 11, "Channel": "Sysmon",
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}},
            "EventData": {"Image": "C:\\cmd.exe", "TargetFilename": "C:\\x.dll"}}});
        let flat = normalize_event(evtx, 1).expect("object");
        assert_eq!(flat["EventID"], 11);
        assert_eq!(flat["Image"], "C:\\cmd.exe");
        assert_eq!(flat["Provider_Name"], "Microsoft-Windows-Sysmon");
        let plain = json!({"CommandLine": "whoami"});
        assert_eq!(normalize_event(plain.clone(), 1).expect("object"), plain);
    }

    /// A Defender-shaped EVTX event with `fields` as its `EventData`,
    /// normalized.
    fn defender(event_id: u32, fields: Value) -> Value {
        let evtx = json!({"Event": {"System": {"EventID": event_id,
            "Channel": "Microsoft-Windows-Windows Defender/Operational",
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Windows Defender"}}},
            "EventData": fields}});
        normalize_event(evtx, 1).expect("object")
    }

    #[test]
    fn spaced_eventdata_names_are_also_reachable_without_spaces() {
        let flat = defender(
            1116,
            json!({"Process Name": "C:\\x\\RedSun.exe", "Threat Name": "Virus:DOS/EICAR_Test_File",
                "Source Name": "AMSI", "Security intelligence Version": "AV: 1.1", "Path": "file:_C:\\a"}),
        );
        assert_eq!(flat["ProcessName"], "C:\\x\\RedSun.exe");
        assert_eq!(flat["Process Name"], "C:\\x\\RedSun.exe");
        assert_eq!(flat["ThreatName"], "Virus:DOS/EICAR_Test_File");
        assert_eq!(flat["SourceName"], "AMSI");
        // Only spaces go; letter case stays as the event wrote it.
        assert_eq!(flat["SecurityintelligenceVersion"], "AV: 1.1");
        assert_eq!(flat["Path"], "file:_C:\\a");
        assert_eq!(flat["EventID"], 1116);
    }

    #[test]
    fn a_name_the_event_gives_wins_and_ambiguous_names_get_nothing() {
        for fields in [
            json!({"ProcessName": "own", "Process Name": "spaced"}),
            json!({"Process Name": "spaced", "ProcessName": "own"}),
        ] {
            let flat = defender(1116, fields);
            assert_eq!(flat["ProcessName"], "own");
            assert_eq!(flat["Process Name"], "spaced");
        }
        // `System` fields are the event's own names too.
        let flat = defender(1116, json!({"Event ID": "spoofed"}));
        assert_eq!(flat["EventID"], 1116);
        let flat = defender(
            1116,
            json!({"Threat Name": "a", "ThreatN ame": "b", " ": "c"}),
        );
        assert!(flat.get("ThreatName").is_none(), "{flat}");
        assert!(flat.get("").is_none(), "{flat}");
        // Flat events are taken as they are.
        let plain = json!({"Process Name": "x"});
        assert_eq!(normalize_event(plain.clone(), 1).expect("object"), plain);
    }

    #[test]
    fn a_sigma_rule_on_process_name_matches_the_spaced_field() {
        let rule = br"
title: Defender saw RedSun
id: 6c1d5e0e-4b1f-4d7e-9a43-1c5f0f6a2d11
status: test
logsource:
    product: windows
    service: windefend
detection:
    selection:
        EventID: 1116
        ProcessName|endswith: '\RedSun.exe'
        ThreatName|contains: 'EICAR'
    condition: selection
level: high
";
        let v = crate::validate(rule, crate::Limits::default());
        let rule = v.rules.first().expect("the rule compiles");
        let hit = defender(
            1116,
            json!({"Process Name": "C:\\Users\\u\\RedSun.exe", "Threat Name": "Virus:DOS/EICAR_Test_File"}),
        );
        assert!(rule.matches(&hit));
        let other = defender(
            1116,
            json!({"Process Name": "C:\\Windows\\notepad.exe", "Threat Name": "Virus:DOS/EICAR_Test_File"}),
        );
        assert!(!rule.matches(&other));
    }

    #[test]
    fn streams_and_bad_events() {
        let evs = parse_event_stream("{\"a\":1}\n{\"a\":2} [{\"a\":3}]").expect("stream");
        assert_eq!(evs.len(), 3);
        assert!(matches!(
            parse_event_stream("{\"a\":1}\nnot json"),
            Err(EventError::NotJson {
                index: 2,
                line: 2,
                ..
            })
        ));
        assert_eq!(
            parse_event_stream("42"),
            Err(EventError::NotAnObject {
                index: 1,
                kind: "number"
            })
        );
    }
}
