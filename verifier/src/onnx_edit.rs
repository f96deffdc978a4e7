//! Two edits of an ONNX file, on the protobuf wire format, made in memory when a worker loads a
//! model (the file on disk is the one the manifest's hash names):
//!
//! - [`prelu_as_relu`]: every `PRelu` node becomes the same function in operators ONNX Runtime
//!   runs fast. SFace has a `PRelu` after each of its 27 convolutions, with one slope per
//!   channel, and ONNX Runtime's CPU `PRelu` broadcasts that slope element by element: measured
//!   with onnxruntime 1.32.0 on one thread, 15 of SFace's 35 ms went there.
//!   `prelu(x, a) = relu(x) − a·relu(−x)` computes the same bits (negation and `relu` are exact,
//!   `0·a` is 0, and `a·(−x)` negated is `a·x`), in 22 ms (BENCHMARKS.md).
//! - [`free_height_and_width`]: a fixed input height and width become free ones. YuNet's graph
//!   works at any size that is a multiple of 32 (its reshapes are `[1, -1, k]`, its upsampling is
//!   by scale factors; OpenCV runs this very file at the image's own size), but the file declares
//!   `[1, 3, 640, 640]` and ONNX Runtime refuses anything else.
//!
//! Only what an edit touches is decoded: other fields are copied byte for byte.

use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("the model file is not a well-formed protobuf message")]
    Malformed,
    #[error("the model has no graph")]
    NoGraph,
    #[error("a PRelu node does not have exactly two inputs and one output")]
    OddPrelu,
    #[error("the model has no graph input named {0:?}")]
    NoInput(String),
    #[error("the model's input {0:?} is not a [1, 3, 640, 640] tensor")]
    NotFixed(String),
}

/// One field of a protobuf message: its number, wire type, the bytes of its value, and the
/// bytes of the whole field (key included).
#[derive(Debug)]
struct Field {
    number: u64,
    wire: u8,
    value: Range<usize>,
    whole: Range<usize>,
}

fn read_varint(buf: &[u8], at: &mut usize) -> Result<u64, EditError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at).ok_or(EditError::Malformed)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(EditError::Malformed)
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Writes a length-delimited field.
fn write_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    write_varint(out, number << 3 | 2);
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The fields of the message in `buf[range]`, with absolute positions.
fn fields(buf: &[u8], range: Range<usize>) -> Result<Vec<Field>, EditError> {
    let mut out = Vec::new();
    let mut at = range.start;
    while at < range.end {
        let start = at;
        let key = read_varint(buf, &mut at)?;
        let (number, wire) = (key >> 3, (key & 7) as u8);
        let mut value_start = at;
        match wire {
            0 => {
                read_varint(buf, &mut at)?;
            }
            1 => at += 8,
            2 => {
                let len = usize::try_from(read_varint(buf, &mut at)?)
                    .map_err(|_| EditError::Malformed)?;
                value_start = at;
                at = at.checked_add(len).ok_or(EditError::Malformed)?;
            }
            5 => at += 4,
            _ => return Err(EditError::Malformed),
        }
        if at > range.end {
            return Err(EditError::Malformed);
        }
        out.push(Field {
            number,
            wire,
            value: value_start..at,
            whole: start..at,
        });
    }
    Ok(out)
}

// Field numbers of onnx.proto: ModelProto, GraphProto, NodeProto, ValueInfoProto, TypeProto,
// TypeProto.Tensor and TensorShapeProto.
const MODEL_GRAPH: u64 = 7;
const GRAPH_NODE: u64 = 1;
const GRAPH_INPUT: u64 = 11;
const NODE_INPUT: u64 = 1;
const NODE_OUTPUT: u64 = 2;
const NODE_NAME: u64 = 3;
const NODE_OP_TYPE: u64 = 4;
const VALUE_INFO_NAME: u64 = 1;
const VALUE_INFO_TYPE: u64 = 2;
const TYPE_TENSOR: u64 = 1;
const TENSOR_SHAPE: u64 = 2;
const SHAPE_DIM: u64 = 1;

/// The strings of a node's repeated field `number`.
fn strings<'a>(buf: &'a [u8], node: &[Field], number: u64) -> Vec<&'a [u8]> {
    node.iter()
        .filter(|f| f.number == number && f.wire == 2)
        .map(|f| &buf[f.value.clone()])
        .collect()
}

fn node(out: &mut Vec<u8>, op: &str, name: &[u8], inputs: &[&[u8]], output: &[u8]) {
    let mut n = Vec::new();
    for input in inputs {
        write_bytes(&mut n, NODE_INPUT, input);
    }
    write_bytes(&mut n, NODE_OUTPUT, output);
    write_bytes(&mut n, NODE_NAME, name);
    write_bytes(&mut n, NODE_OP_TYPE, op.as_bytes());
    write_bytes(out, GRAPH_NODE, &n);
}

/// The five nodes that compute `y = prelu(x, a)` as `relu(x) − a·relu(−x)`; the intermediate
/// values are named after `y` with a suffix no exporter writes.
fn prelu_as_relu_nodes(out: &mut Vec<u8>, name: &[u8], x: &[u8], a: &[u8], y: &[u8]) {
    let with = |s: &[u8], suffix: &str| [s, b"::prelu.", suffix.as_bytes()].concat();
    let (pos, neg, neg_part, scaled) = (
        with(y, "pos"),
        with(y, "neg"),
        with(y, "negpart"),
        with(y, "scaled"),
    );
    node(out, "Relu", &with(name, "pos"), &[x], &pos);
    node(out, "Neg", &with(name, "neg"), &[x], &neg);
    node(out, "Relu", &with(name, "negpart"), &[&neg], &neg_part);
    node(out, "Mul", &with(name, "scaled"), &[&neg_part, a], &scaled);
    node(out, "Sub", name, &[&pos, &scaled], y);
}

/// The model with every `PRelu` node of its graph replaced; how many were.
pub fn prelu_as_relu(model: &[u8]) -> Result<(Vec<u8>, usize), EditError> {
    let top = fields(model, 0..model.len())?;
    let graph = top
        .iter()
        .find(|f| f.number == MODEL_GRAPH && f.wire == 2)
        .ok_or(EditError::NoGraph)?;
    let mut new_graph = Vec::with_capacity(graph.value.len() + 4096);
    let mut replaced = 0;
    for f in fields(model, graph.value.clone())? {
        if f.number == GRAPH_NODE && f.wire == 2 {
            let node = fields(model, f.value.clone())?;
            if strings(model, &node, NODE_OP_TYPE) == [b"PRelu"] {
                let (inputs, outputs) = (
                    strings(model, &node, NODE_INPUT),
                    strings(model, &node, NODE_OUTPUT),
                );
                let ([x, a], [y]) = (inputs.as_slice(), outputs.as_slice()) else {
                    return Err(EditError::OddPrelu);
                };
                let name = strings(model, &node, NODE_NAME)
                    .first()
                    .copied()
                    .unwrap_or(y);
                prelu_as_relu_nodes(&mut new_graph, name, x, a, y);
                replaced += 1;
                continue;
            }
        }
        new_graph.extend_from_slice(&model[f.whole]);
    }
    let mut out = Vec::with_capacity(model.len() + new_graph.len() - graph.value.len());
    for f in &top {
        if std::ptr::eq(f, graph) {
            write_bytes(&mut out, MODEL_GRAPH, &new_graph);
        } else {
            out.extend_from_slice(&model[f.whole.clone()]);
        }
    }
    Ok((out, replaced))
}

/// `dim_value: 640`, and the `dim_param`s that replace it: three bytes each, so that no
/// enclosing length changes and the edit is made in place.
const FIXED_640: [u8; 3] = [0x08, 0x80, 0x05];
const FREE: [[u8; 3]; 2] = [[0x12, 0x01, b'h'], [0x12, 0x01, b'w']];

/// The value of the first length-delimited field `number` of the message in `buf[range]`.
fn child(buf: &[u8], range: Range<usize>, number: u64) -> Result<Option<Range<usize>>, EditError> {
    Ok(fields(buf, range)?
        .into_iter()
        .find(|f| f.number == number && f.wire == 2)
        .map(|f| f.value))
}

/// Turns the last two dimensions (height, width) of the graph input `name`, declared as 640
/// each, into free ones, in place. Anything that does not look exactly like that is refused.
pub fn free_height_and_width(model: &mut [u8], name: &str) -> Result<(), EditError> {
    let not_fixed = || EditError::NotFixed(name.to_owned());
    let graph = child(model, 0..model.len(), MODEL_GRAPH)?.ok_or(EditError::NoGraph)?;
    let mut input = None;
    for f in fields(model, graph)? {
        if f.number == GRAPH_INPUT
            && f.wire == 2
            && child(model, f.value.clone(), VALUE_INFO_NAME)?
                .is_some_and(|n| &model[n] == name.as_bytes())
        {
            input = Some(f.value);
            break;
        }
    }
    let mut shape = input.ok_or_else(|| EditError::NoInput(name.to_owned()))?;
    for number in [VALUE_INFO_TYPE, TYPE_TENSOR, TENSOR_SHAPE] {
        shape = child(model, shape, number)?.ok_or_else(not_fixed)?;
    }
    let dims: Vec<Range<usize>> = fields(model, shape)?
        .into_iter()
        .filter(|f| f.number == SHAPE_DIM && f.wire == 2)
        .map(|f| f.value)
        .collect();
    let [_, _, h, w] = dims.as_slice() else {
        return Err(not_fixed());
    };
    if model[h.clone()] != FIXED_640 || model[w.clone()] != FIXED_640 {
        return Err(not_fixed());
    }
    for (dim, free) in [h, w].into_iter().zip(FREE) {
        model[dim.clone()].copy_from_slice(&free);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a_node(op: &str, inputs: &[&str], output: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let inputs: Vec<&[u8]> = inputs.iter().map(|s| s.as_bytes()).collect();
        node(
            &mut out,
            op,
            format!("n_{output}").as_bytes(),
            &inputs,
            output.as_bytes(),
        );
        out
    }

    /// ir_version, a graph (a Conv, a PRelu, a Flatten, then a graph name), an opset import.
    fn model() -> Vec<u8> {
        let mut graph = [
            a_node("Conv", &["data", "w"], "c"),
            a_node("PRelu", &["c", "slope"], "p"),
            a_node("Flatten", &["p"], "out"),
        ]
        .concat();
        write_bytes(&mut graph, 2, b"g");
        let mut m = vec![0x08, 0x06];
        write_bytes(&mut m, MODEL_GRAPH, &graph);
        write_bytes(&mut m, 8, &[0x10, 0x0b]); // opset_import { version: 11 }
        m
    }

    /// (op, inputs, output) of each node of the model's graph.
    fn nodes(m: &[u8]) -> Vec<(String, Vec<String>, String)> {
        let top = fields(m, 0..m.len()).unwrap();
        let graph = top.iter().find(|f| f.number == MODEL_GRAPH).unwrap();
        let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        fields(m, graph.value.clone())
            .unwrap()
            .into_iter()
            .filter(|f| f.number == GRAPH_NODE)
            .map(|f| {
                let n = fields(m, f.value).unwrap();
                (
                    s(strings(m, &n, NODE_OP_TYPE)[0]),
                    strings(m, &n, NODE_INPUT).into_iter().map(s).collect(),
                    s(strings(m, &n, NODE_OUTPUT)[0]),
                )
            })
            .collect()
    }

    #[test]
    fn a_prelu_becomes_relu_minus_the_scaled_relu_of_its_negation() {
        let original = model();
        let (m, replaced) = prelu_as_relu(&original).unwrap();
        assert_eq!(replaced, 1);
        let ops: Vec<String> = nodes(&m).into_iter().map(|n| n.0).collect();
        assert_eq!(
            ops,
            ["Conv", "Relu", "Neg", "Relu", "Mul", "Sub", "Flatten"]
        );
        let n = nodes(&m);
        let (relu, neg, neg_relu, mul, sub) = (&n[1], &n[2], &n[3], &n[4], &n[5]);
        assert_eq!(relu.1, ["c"]);
        assert_eq!(neg.1, ["c"]);
        assert_eq!(neg_relu.1, std::slice::from_ref(&neg.2));
        assert_eq!(mul.1, [neg_relu.2.clone(), "slope".into()]);
        assert_eq!(sub.1, [relu.2.clone(), mul.2.clone()]);
        assert_eq!(sub.2, "p", "the last node writes the PRelu's output");
        // Everything else is copied byte for byte: the model's other fields and the graph's.
        assert_eq!(m[..2], original[..2]);
        assert!(m.ends_with(&original[original.len() - 4..]));
        // Nothing left to replace the second time.
        assert_eq!(prelu_as_relu(&m).unwrap().0, m);
    }

    /// A model whose graph has an input `name` of shape [1, 3, 640, `last`] after another one.
    fn model_with_input(name: &str, last: &[u8]) -> Vec<u8> {
        let mut dims = Vec::new();
        for d in [&[0x08, 0x01][..], &[0x08, 0x03], &FIXED_640, last] {
            write_bytes(&mut dims, SHAPE_DIM, d);
        }
        let mut tensor = vec![0x08, 0x01]; // elem_type: float
        write_bytes(&mut tensor, TENSOR_SHAPE, &dims);
        let mut ty = Vec::new();
        write_bytes(&mut ty, TYPE_TENSOR, &tensor);
        let value_info = |n: &str| {
            let mut v = Vec::new();
            write_bytes(&mut v, VALUE_INFO_NAME, n.as_bytes());
            write_bytes(&mut v, VALUE_INFO_TYPE, &ty);
            v
        };
        let mut graph = a_node("Conv", &["x", "w"], "y");
        write_bytes(&mut graph, GRAPH_INPUT, &value_info("other"));
        write_bytes(&mut graph, GRAPH_INPUT, &value_info(name));
        let mut m = vec![0x08, 0x06];
        write_bytes(&mut m, MODEL_GRAPH, &graph);
        m
    }

    #[test]
    fn frees_the_named_inputs_height_and_width_in_place() {
        let mut m = model_with_input("input", &FIXED_640);
        let before = m.clone();
        free_height_and_width(&mut m, "input").unwrap();
        assert_eq!(m.len(), before.len());
        let changed: Vec<usize> = (0..m.len()).filter(|&i| m[i] != before[i]).collect();
        assert_eq!(changed.len(), 6, "three bytes a dimension");
        assert!(
            changed[0] > before.len() / 2,
            "the other input is untouched"
        );
        let text = String::from_utf8_lossy(&m);
        assert!(text.contains("\u{12}\u{1}h") && text.contains("\u{12}\u{1}w"));
        // Done once: a second pass finds nothing fixed left.
        assert_eq!(
            free_height_and_width(&mut m, "input"),
            Err(EditError::NotFixed("input".into()))
        );
    }

    #[test]
    fn refuses_an_input_it_does_not_recognise() {
        let mut m = model_with_input("input", &[0x08, 0x20]);
        let before = m.clone();
        assert_eq!(
            free_height_and_width(&mut m, "input"),
            Err(EditError::NotFixed("input".into()))
        );
        assert_eq!(m, before, "nothing written when refused");
        let mut m = model_with_input("data", &FIXED_640);
        assert_eq!(
            free_height_and_width(&mut m, "input"),
            Err(EditError::NoInput("input".into()))
        );
        let mut m = model_with_input("input", &FIXED_640);
        let cut = m.len() - 3;
        assert_eq!(
            free_height_and_width(&mut m[..cut], "input"),
            Err(EditError::Malformed)
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let m = model();
        for cut in [1, 7, 30] {
            assert_eq!(
                prelu_as_relu(&m[..m.len() - cut]),
                Err(EditError::Malformed),
                "cut {cut}"
            );
        }
        assert_eq!(prelu_as_relu(&[0x08, 0x06]), Err(EditError::NoGraph));
        assert_eq!(prelu_as_relu(&[0xff; 11]), Err(EditError::Malformed));
        let mut odd = Vec::new();
        write_bytes(&mut odd, MODEL_GRAPH, &a_node("PRelu", &["x"], "y"));
        assert_eq!(prelu_as_relu(&odd), Err(EditError::OddPrelu));
    }
}
