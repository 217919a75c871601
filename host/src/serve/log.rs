//! A server block's `log` directive: one line per query in CoreDNS's format (`{common}` by
//! default, `{combined}` or any format of its placeholders), for the names and the response
//! classes configured. Not a plugin of the chain: the router writes the line once the chain is
//! done.

use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::corefile::{Directive, Error};
use crate::dns::Query;

const COMMON: &str = "{remote}:{port} - {>id} \"{type} {class} {name} {proto} {size} {>do} {>bufsize}\" {rcode} {>rflags} {rsize} {duration}";
const COMBINED_TAIL: &str = " \"{>opcode}\"";

/// CoreDNS's response classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Success,
    Denial,
    Error,
}

#[derive(Clone, Debug)]
struct Rule {
    /// Lowercase, fully qualified.
    scope: String,
    format: String,
    /// Empty: every class.
    classes: Vec<Class>,
}

/// Every `log` directive of a block.
#[derive(Clone, Debug, Default)]
pub struct Log {
    rules: Vec<Rule>,
}

impl Log {
    /// Adds one `log [NAMES...] [FORMAT] { class CLASSES... }` directive.
    pub fn add(&mut self, d: &Directive) -> Result<(), Error> {
        let mut args: Vec<&str> = d.arg_texts();
        let mut format = COMMON.to_string();
        if args.len() > 1 && args.last().is_some_and(|a| a.contains('{')) {
            let custom = args.pop().unwrap_or_default();
            format = custom.replace("{common}", COMMON).replace("{combined}", &format!("{COMMON}{COMBINED_TAIL}"));
        }
        if args.is_empty() {
            args.push(".");
        }
        let mut classes = Vec::new();
        for opt in d.block.as_deref().unwrap_or_default() {
            if opt.name.text != "class" {
                return Err(opt.error(format!("log: unknown property '{}'", opt.name.text)));
            }
            if opt.args.is_empty() {
                return Err(opt.error("log: class needs at least one of all, success, denial, error"));
            }
            for a in &opt.args {
                match a.text.as_str() {
                    "all" => classes.extend([Class::Success, Class::Denial, Class::Error]),
                    "success" => classes.push(Class::Success),
                    "denial" => classes.push(Class::Denial),
                    "error" => classes.push(Class::Error),
                    other => {
                        return Err(Error::token(
                            a,
                            format!("log: invalid class {other:?}: use all, success, denial or error"),
                        ));
                    }
                }
            }
        }
        for scope in args {
            let scope = kubernetai_guest::name::normalize_zone(scope);
            self.rules.push(Rule { scope, format: format.clone(), classes: classes.clone() });
        }
        Ok(())
    }

    /// Logs the query if the first rule whose name scope holds it takes its response class.
    pub fn write(&self, q: &Query, size: usize, response: &[u8], took: Duration) {
        let Some(rule) = self.rules.iter().find(|r| kubernetai_guest::name::is_subdomain(&q.qname, &r.scope)) else {
            return;
        };
        if !rule.classes.is_empty() && !rule.classes.contains(&classify(response)) {
            return;
        }
        println!("[INFO] {}", line(&rule.format, q, size, response, took));
    }
}

/// The class CoreDNS gives a response: answers are success, NXDOMAIN and NODATA are denial,
/// every other error is error.
pub fn classify(response: &[u8]) -> Class {
    let rcode = response.get(3).map_or(2, |b| b & 0x0f);
    let answers = response.get(6..8).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    match rcode {
        0 if answers > 0 => Class::Success,
        0 => match Message::from_vec(response) {
            // A referral (NS without SOA) is a success too.
            Ok(m)
                if m.authorities.iter().any(|r| r.record_type() == RecordType::NS)
                    && !m.authorities.iter().any(|r| r.record_type() == RecordType::SOA) =>
            {
                Class::Success
            }
            _ => Class::Denial,
        },
        3 => Class::Denial,
        _ => Class::Error,
    }
}

fn line(format: &str, query: &Query, size: usize, response: &[u8], took: Duration) -> String {
    let (req, client, proto) = (query, query.client, query.proto);
    let q = &req.message.queries[0];
    let (do_bit, bufsize) = req.message.edns.as_ref().map_or((false, 512), |e| (e.flags().dnssec_ok, e.max_payload()));
    let (rcode, flags) = if response.len() < 4 {
        ("-".to_string(), "-".to_string())
    } else {
        let names = [
            (response[2] & 0x80, "qr"),
            (response[2] & 0x04, "aa"),
            (response[2] & 0x02, "tc"),
            (response[2] & 0x01, "rd"),
            (response[3] & 0x80, "ra"),
        ];
        let flags: Vec<&str> = names.iter().filter(|(bit, _)| *bit != 0).map(|(_, n)| *n).collect();
        (crate::dns::rcode_name(response[3] & 0x0f).to_string(), flags.join(","))
    };
    let mut out = String::with_capacity(format.len() + 64);
    let mut rest = format;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let key = &rest[open + 1..open + close];
        let value = match key {
            "remote" => client.ip().to_string(),
            "port" => client.port().to_string(),
            ">id" => req.message.metadata.id.to_string(),
            "type" => q.query_type().to_string(),
            "class" => q.query_class().to_string(),
            "name" => q.name().to_string(),
            "proto" => proto.name().to_string(),
            "size" => size.to_string(),
            ">do" => do_bit.to_string(),
            ">bufsize" => bufsize.to_string(),
            "rcode" => rcode.clone(),
            ">rflags" => flags.clone(),
            "rsize" => response.len().to_string(),
            "duration" => format!("{}s", took.as_secs_f64()),
            ">opcode" => u8::from(req.message.metadata.op_code).to_string(),
            _ => format!("{{{key}}}"),
        };
        out.push_str(&value);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use hickory_proto::op::{Message, MessageType, OpCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    use super::*;
    use hickory_proto::op::ResponseCode;

    fn request(name: &str) -> Query {
        let mut m = Message::new(42, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(hickory_proto::op::Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        let client: SocketAddr = "10.0.0.9:5300".parse().unwrap();
        Query::new(m.to_vec().unwrap(), m, client, crate::dns::Proto::Udp, 512).unwrap()
    }

    fn answer(rcode: ResponseCode, records: usize) -> Vec<u8> {
        let mut m = Message::new(42, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m.metadata.authoritative = true;
        m.metadata.recursion_desired = true;
        for _ in 0..records {
            m.answers.push(Record::from_rdata(Name::root(), 5, RData::A(A::new(10, 0, 0, 1))));
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn the_common_format_is_coredns_default_line() {
        let req = request("web.shop.svc.cluster.local.");
        let resp = answer(ResponseCode::NoError, 1);
        let got = line(COMMON, &req, 44, &resp, Duration::from_micros(1500));
        let want = format!(
            "10.0.0.9:5300 - 42 \"A IN web.shop.svc.cluster.local. udp 44 false 512\" NOERROR qr,aa,rd {} 0.0015s",
            resp.len()
        );
        assert_eq!(got, want);
    }

    #[test]
    fn responses_fall_in_coredns_classes() {
        assert_eq!(classify(&answer(ResponseCode::NoError, 1)), Class::Success);
        assert_eq!(classify(&answer(ResponseCode::NoError, 0)), Class::Denial);
        assert_eq!(classify(&answer(ResponseCode::NXDomain, 0)), Class::Denial);
        assert_eq!(classify(&answer(ResponseCode::ServFail, 0)), Class::Error);
        assert_eq!(classify(&answer(ResponseCode::Refused, 0)), Class::Error);
    }
}
