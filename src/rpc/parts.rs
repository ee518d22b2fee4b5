//! Fields that can grow — a task's params, its dependencies' outputs, values, its command and
//! env, scripts, and its outputs — travel in parts of [`PART_SIZE`], so that no size a user can reach meets gRPC's
//! message limit; what arrives is bounded on the bytes that come ([`MAX_FIELD_BYTES`]).

use tonic::Status;

use super::proto::execute_request::Item;
use super::proto::part::Field;
use super::proto::{ExecuteRequest, Part, ScriptFile, TaskRequest};
use super::{MAX_FIELD_BYTES, PART_SIZE};

/// Moves `data` into parts of `field` when it is larger than one part; what stays inline.
fn split(data: Vec<u8>, field: Field, parts: &mut Vec<ExecuteRequest>) -> Vec<u8> {
    if data.len() <= PART_SIZE {
        return data;
    }
    for chunk in data.chunks(PART_SIZE) {
        parts.push(ExecuteRequest { item: Some(Item::Part(Part { field: field as i32, data: chunk.to_vec() })) });
    }
    Vec::new()
}

/// The messages that follow `request`: parts of its large fields, then each script (its
/// content in parts when large). Sets `request.parts`.
pub fn follow_ups(request: &mut TaskRequest, scripts: Vec<ScriptFile>) -> Vec<ExecuteRequest> {
    let mut messages = Vec::new();
    request.params_json = split(std::mem::take(&mut request.params_json), Field::Params, &mut messages);
    request.deps_json = split(std::mem::take(&mut request.deps_json), Field::Deps, &mut messages);
    request.values_json = split(std::mem::take(&mut request.values_json), Field::Values, &mut messages);
    request.task_json = split(std::mem::take(&mut request.task_json), Field::Task, &mut messages);
    for mut script in scripts {
        let content = std::mem::take(&mut script.content);
        let mut rest = Vec::new();
        script.content = split(content, Field::Script, &mut rest);
        messages.push(ExecuteRequest { item: Some(Item::Script(script)) });
        messages.extend(rest);
    }
    request.parts = messages.iter().filter(|message| matches!(message.item, Some(Item::Part(_)))).count() as u64;
    messages
}

/// Puts a task back together on the agent: the parts and scripts its TaskRequest announced.
#[derive(Debug, Default)]
pub struct Assembler {
    pub scripts: Vec<ScriptFile>,
    parts: u64,
    bytes: usize,
}

impl Assembler {
    /// Whether every part and script `request` announced has arrived.
    pub fn complete(&self, request: &TaskRequest) -> bool {
        self.parts == request.parts && self.scripts.len() as u64 == u64::from(request.scripts)
    }

    /// Takes one message of the preamble into `request`.
    pub fn take(&mut self, request: &mut TaskRequest, item: Item) -> Result<(), Status> {
        let added = match item {
            Item::Part(part) => {
                self.parts += 1;
                if self.parts > request.parts {
                    return Err(Status::invalid_argument("more parts than the TaskRequest announced"));
                }
                let size = part.data.len();
                let target = match Field::try_from(part.field) {
                    Ok(Field::Params) => &mut request.params_json,
                    Ok(Field::Deps) => &mut request.deps_json,
                    Ok(Field::Values) => &mut request.values_json,
                    Ok(Field::Task) => &mut request.task_json,
                    Ok(Field::Script) => match self.scripts.last_mut() {
                        Some(script) => &mut script.content,
                        None => return Err(Status::invalid_argument("a script part before any script")),
                    },
                    _ => return Err(Status::invalid_argument("a part of an unknown field")),
                };
                target.extend_from_slice(&part.data);
                size
            }
            Item::Script(script) => {
                if self.scripts.len() as u64 >= u64::from(request.scripts) {
                    return Err(Status::invalid_argument("more scripts than the TaskRequest announced"));
                }
                let size = script.content.len() + script.path.len();
                self.scripts.push(script);
                size
            }
            _ => return Err(Status::invalid_argument("expected the scripts and parts the TaskRequest announced")),
        };
        self.bytes = self.bytes.saturating_add(added);
        if self.bytes > MAX_FIELD_BYTES {
            return Err(Status::invalid_argument(format!(
                "the task's params, dependencies' outputs, values and scripts exceed {MAX_FIELD_BYTES} bytes"
            )));
        }
        Ok(())
    }
}

/// The task's outputs as parts when they are larger than one, and what stays inline.
pub fn outputs_parts(outputs: Vec<u8>) -> (Vec<Vec<u8>>, Vec<u8>) {
    if outputs.len() <= PART_SIZE {
        return (Vec::new(), outputs);
    }
    (outputs.chunks(PART_SIZE).map(<[u8]>::to_vec).collect(), Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_fields_travel_in_parts_and_come_back_whole() {
        let mut request = TaskRequest {
            params_json: vec![b'p'; PART_SIZE * 2 + 5],
            deps_json: b"{}".to_vec(),
            scripts: 1,
            ..Default::default()
        };
        let script = ScriptFile { path: "big.lua".into(), content: vec![b's'; PART_SIZE + 1] };
        let messages = follow_ups(&mut request, vec![script]);
        assert_eq!(request.parts, 5, "three parts of params, two of the script");
        assert!(request.params_json.is_empty() && request.deps_json == b"{}");
        let mut received = TaskRequest { params_json: Vec::new(), ..request.clone() };
        let mut assembler = Assembler::default();
        for message in messages {
            assert!(!assembler.complete(&received));
            assembler.take(&mut received, message.item.expect("an item")).expect("taken");
        }
        assert!(assembler.complete(&received));
        assert_eq!(received.params_json.len(), PART_SIZE * 2 + 5);
        assert_eq!(assembler.scripts[0].content.len(), PART_SIZE + 1);
    }

    #[test]
    fn parts_out_of_place_are_refused() {
        let mut request = TaskRequest { parts: 1, scripts: 1, ..Default::default() };
        let part = Item::Part(Part { field: Field::Script as i32, data: vec![1] });
        let error = Assembler::default().take(&mut request, part).expect_err("no script yet");
        assert!(error.message().contains("before any script"), "{error}");
        let mut request = TaskRequest { parts: 0, ..Default::default() };
        let part = Item::Part(Part { field: Field::Params as i32, data: vec![1] });
        let error = Assembler::default().take(&mut request, part).expect_err("none announced");
        assert!(error.message().contains("more parts"), "{error}");
    }
}
