//! Exercise 3 of the MISP training: an Event filled from the "Phishing E-mail" template and tagged
//! with the circl taxonomy's phishing tag and TLP:green; mandatory elements, wrong values and other
//! organisations' private templates are refused, and refusals write nothing. Template management
//! (elements, sharing, rights) through MISP's routes.

use cairn_tests::stack::Stack;
use serde_json::{Value, json};

/// The id of the element named `name` in a `templates/view` answer.
fn element_id(view: &Value, name: &str) -> String {
    view["TemplateElement"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| ["TemplateElementAttribute", "TemplateElementText", "TemplateElementFile"].iter().any(|k| e[*k][0]["name"] == name))
        .and_then(|e| e["id"].as_str())
        .unwrap_or_else(|| panic!("no element {name:?} in {view}"))
        .to_string()
}

#[tokio::test]
async fn exercise_3_the_phishing_template_fills_an_event_in_one_commit() {
    let stack = Stack::start().await;
    let (_, analyst) = stack.org_user("CIRCL-Trainee", "trainee@t.test", 3).await;
    let (status, r) = stack.post("/taxonomies/enable/circl", &json!({})).await;
    assert_eq!(status, 200, "{r}");

    // The seed templates are there for everyone (shared by the host organisation).
    let (status, index) = stack.post_as(&analyst, "/templates/index", &json!({})).await;
    assert_eq!(status, 200, "{index}");
    let names: Vec<&str> = index.as_array().expect("list").iter().filter_map(|t| t["Template"]["name"].as_str()).collect();
    for expected in ["Phishing E-mail", "Phishing E-mail with malicious attachment", "Malware Report", "Indicator List"] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    let phishing = index.as_array().expect("list").iter().find(|t| t["Template"]["name"] == "Phishing E-mail").expect("phishing");
    let template_id = phishing["Template"]["id"].as_str().expect("id").to_string();
    let (status, view) = stack.post_as(&analyst, &format!("/templates/view/{template_id}"), &json!({})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["TemplateElement"].as_array().map(Vec::len), Some(8), "{view}");

    // The Event's metadata as the exercise gives it, with the circl phishing tag and TLP:green.
    let (status, e) = stack
        .post_as(&analyst, "/events/add", &json!({"info": "Phishing e-mail", "date": "2016-03-22", "analysis": 2, "threat_level_id": 3,
            "distribution": 3, "Tag": [{"name": "circl:incident-classification=\"phishing\""}, {"name": "tlp:green"}]}))
        .await;
    assert_eq!(status, 200, "{e}");
    let event_id = e["Event"]["id"].as_str().expect("id").to_string();
    let event_uuid = e["Event"]["uuid"].as_str().expect("uuid").to_string();
    let path = format!("/templates/populateEventFromTemplate/{template_id}/{event_id}");
    let from = element_id(&view, "From address");
    let url = element_id(&view, "Malicious url");
    let subject = element_id(&view, "E-mail subject");
    let source_ip = element_id(&view, "Source IP");
    // A fresh instance numbers the seed template and its elements as MISP does (`value_1` is the From
    // address in MISP's form too).
    assert_eq!((template_id.as_str(), from.as_str(), url.as_str(), subject.as_str(), source_ip.as_str()), ("1", "1", "2", "4", "7"));

    // A missing mandatory element is refused, naming it, and nothing is written.
    let head = stack.head_position().await;
    let (status, r) = stack
        .post_as(&analyst, &path, &json!({"Template": {format!("value_{from}"): "perspirating-madman@microsoft.com", format!("value_{source_ip}"): "23.96.52.53"}}))
        .await;
    assert_eq!(status, 403, "{r}");
    assert_eq!(r["errors"]["Malicious url"][0], "This field is mandatory.", "{r}");
    assert_eq!(r["errors"]["E-mail subject"][0], "This field is mandatory.", "{r}");
    assert_eq!(stack.head_position().await, head, "a refused population writes nothing");
    // So is a value that is not of the element's type.
    let (status, r) = stack
        .post_as(&analyst, &path, &json!({"Template": {format!("value_{from}"): "a@b.test", format!("value_{url}"): "http://x.test/",
            format!("value_{subject}"): "s", format!("value_{source_ip}"): "not-an-ip"}}))
        .await;
    assert_eq!(status, 403, "{r}");
    assert!(r["errors"]["Source IP"][0].as_str().is_some_and(|m| m.contains("not-an-ip")), "{r}");
    assert_eq!(stack.head_position().await, head);

    // The exercise's values: a preview first (nothing written), then the population in one commit.
    let values = json!({"Template": {
        format!("value_{from}"): "perspirating-madman@microsoft.com",
        format!("value_{url}"): "http://windows.microsoft.com/en-us/internetexplorer/download-ie",
        format!("value_{subject}"): "Download IE today, we support HTML5 now!",
        format!("value_{source_ip}"): "23.96.52.53",
    }});
    let mut preview = values.clone();
    preview["Template"]["preview"] = json!(true);
    let (status, p) = stack.post_as(&analyst, &path, &preview).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["Attribute"].as_array().map(Vec::len), Some(4), "{p}");
    assert_eq!(stack.head_position().await, head, "a preview writes nothing");
    let (status, r) = stack.post_as(&analyst, &path, &values).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["attributes_added"], json!(4), "{r}");

    let (_, view) = stack.post_as(&analyst, &format!("/events/view/{event_id}"), &json!({})).await;
    let mut got: Vec<(String, String, String, bool)> = view["Event"]["Attribute"]
        .as_array()
        .expect("attributes")
        .iter()
        .map(|a| {
            (a["type"].as_str().unwrap_or_default().into(), a["category"].as_str().unwrap_or_default().into(), a["value"].as_str().unwrap_or_default().into(), a["to_ids"] == json!(true))
        })
        .collect();
    got.sort();
    let mut expected = vec![
        ("email-src".to_string(), "Payload delivery".to_string(), "perspirating-madman@microsoft.com".to_string(), true),
        ("url".into(), "Payload delivery".into(), "http://windows.microsoft.com/en-us/internetexplorer/download-ie".into(), true),
        ("email-subject".into(), "Payload delivery".into(), "Download IE today, we support HTML5 now!".into(), false),
        ("ip-src".into(), "Payload delivery".into(), "23.96.52.53".into(), true),
    ];
    expected.sort();
    assert_eq!(got, expected, "{view}");
    let tags: Vec<&str> = view["Event"]["Tag"].as_array().expect("tags").iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(tags.contains(&"circl:incident-classification=\"phishing\"") && tags.contains(&"tlp:green"), "{tags:?}");

    // The four attributes were added by one command (one commit) recorded as the template population.
    let lines = stack.history(&event_uuid);
    let added: Vec<&Value> = lines.iter().filter(|l| l["change_type"] == "attribute.added").collect();
    assert_eq!(added.len(), 4);
    assert!(added.iter().all(|l| l["command_id"] == added[0]["command_id"] && l["command"] == "templates.populate_event"), "{added:?}");
    stack.stop().await;
}

#[tokio::test]
async fn templates_are_managed_by_their_organisation_and_private_ones_stay_private() {
    let stack = Stack::start().await;
    let (org_a, org_admin) = stack.org_user("CERT-A", "admin@a.test", 2).await;
    let (_, user_a) = stack.user_in(&org_a, "user@a.test", json!(3)).await;
    let (_, user_b) = stack.org_user("CERT-B", "user@b.test", 3).await;

    // A plain user may not create templates; an org admin may, with its elements.
    let body = json!({"Template": {"name": "C2 report", "description": "C2 seen in our sandbox", "share": false, "tags": ["tlp:green"]},
        "TemplateElement": [
            {"element_definition": "text", "name": "Network", "text": "Paste C2 indicators."},
            {"element_definition": "attribute", "name": "C2", "category": "Network activity", "type": "CnC", "complex": true,
             "to_ids": true, "mandatory": true, "batch": true}]});
    let head = stack.head_position().await;
    let (status, r) = stack.post_as(&user_a, "/templates/add", &body).await;
    assert_eq!(status, 403, "{r}");
    assert_eq!(stack.head_position().await, head);
    // Bad elements are refused, naming the field.
    let mut bad = body.clone();
    bad["TemplateElement"][1]["category"] = json!("Person");
    let (status, r) = stack.post_as(&org_admin, "/templates/add", &bad).await;
    assert_eq!(status, 403, "{r}");
    assert!(r["errors"]["category"].is_array(), "{r}");
    assert_eq!(stack.head_position().await, head);
    let (status, t) = stack.post_as(&org_admin, "/templates/add", &body).await;
    assert_eq!(status, 200, "{t}");
    let id = t["Template"]["id"].as_str().expect("id").to_string();
    assert_eq!(t["Template"]["org"], "CERT-A");
    assert_eq!(t["TemplateTag"][0]["Tag"]["name"], "tlp:green", "{t}");

    // Private: CERT-B neither lists nor sees it; CERT-A's user does.
    let (_, index_b) = stack.post_as(&user_b, "/templates/index", &json!({})).await;
    assert!(!index_b.as_array().expect("list").iter().any(|x| x["Template"]["id"] == json!(id)), "{index_b}");
    let (status, _) = stack.post_as(&user_b, &format!("/templates/view/{id}"), &json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = stack.post_as(&user_a, &format!("/templates/view/{id}"), &json!({})).await;
    assert_eq!(status, 200);

    // Elements: add, edit (unsent fields kept), delete; the plain user may not.
    let (status, e) = stack
        .post_as(&org_admin, &format!("/templateElements/add/attribute/{id}"), &json!({"name": "Hashes", "category": "Payload installation", "type": "File", "complex": true, "batch": true}))
        .await;
    assert_eq!(status, 200, "{e}");
    let element = e["TemplateElement"]["id"].as_str().expect("id").to_string();
    assert_eq!(e["TemplateElement"]["position"], "3", "{e}");
    let (status, _) = stack.post_as(&user_a, &format!("/templateElements/edit/attribute/{element}"), &json!({"mandatory": true})).await;
    assert_eq!(status, 403);
    let (status, e) = stack.post_as(&org_admin, &format!("/templateElements/edit/attribute/{element}"), &json!({"mandatory": true})).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["TemplateElement"]["TemplateElementAttribute"][0]["mandatory"], json!(true));
    assert_eq!(e["TemplateElement"]["TemplateElementAttribute"][0]["name"], "Hashes", "{e}");

    // Complex elements are typed by detection among the group's types; the template's tag is attached.
    let (_, ev) = stack.post_as(&user_a, "/events/add", &json!({"info": "sandbox run", "distribution": 0})).await;
    let event_id = ev["Event"]["id"].as_str().expect("id").to_string();
    let (_, tv) = stack.post_as(&user_a, &format!("/templates/view/{id}"), &json!({})).await;
    let c2 = element_id(&tv, "C2");
    let hashes = element_id(&tv, "Hashes");
    let (status, r) = stack
        .post_as(&user_a, &format!("/templates/populateEventFromTemplate/{id}/{event_id}"), &json!({"values": {
            c2.clone(): "198.51.100.7\nevil-c2.example.com\nhttp://evil-c2.example.com/gate.php",
            hashes.clone(): "dropper.exe\n44d88612fea8a8f36de82e1278abb02f"}}))
        .await;
    assert_eq!(status, 200, "{r}");
    let (_, view) = stack.post_as(&user_a, &format!("/events/view/{event_id}"), &json!({})).await;
    let mut typed: Vec<(String, String)> = view["Event"]["Attribute"]
        .as_array()
        .expect("attributes")
        .iter()
        .map(|a| (a["type"].as_str().unwrap_or_default().into(), a["value"].as_str().unwrap_or_default().into()))
        .collect();
    typed.sort();
    assert_eq!(
        typed,
        vec![
            ("filename".to_string(), "dropper.exe".to_string()),
            ("hostname".into(), "evil-c2.example.com".into()),
            ("ip-dst".into(), "198.51.100.7".into()),
            ("md5".into(), "44d88612fea8a8f36de82e1278abb02f".into()),
            ("url".into(), "http://evil-c2.example.com/gate.php".into()),
        ]
    );
    assert!(view["Event"]["Tag"].as_array().expect("tags").iter().any(|t| t["name"] == "tlp:green"), "{view}");

    // CERT-B may not fill its Events from CERT-A's private template: the template does not exist for it.
    let (_, evb) = stack.post_as(&user_b, "/events/add", &json!({"info": "b", "distribution": 0})).await;
    let event_b = evb["Event"]["id"].as_str().expect("id").to_string();
    let head = stack.head_position().await;
    let (status, r) = stack.post_as(&user_b, &format!("/templates/populateEventFromTemplate/{id}/{event_b}"), &json!({"values": {c2: "198.51.100.8"}})).await;
    assert_eq!(status, 404, "{r}");
    assert_eq!(stack.head_position().await, head);

    // Sharing makes it usable by everyone; deletion by its organisation removes it.
    let (status, _) = stack.post_as(&org_admin, &format!("/templates/edit/{id}"), &json!({"share": true})).await;
    assert_eq!(status, 200);
    let (status, _) = stack.post_as(&user_b, &format!("/templates/view/{id}"), &json!({})).await;
    assert_eq!(status, 200);
    let (status, _) = stack.post_as(&user_b, &format!("/templates/delete/{id}"), &json!({})).await;
    assert_eq!(status, 403, "another organisation may use, not manage");
    let (status, _) = stack.post_as(&org_admin, &format!("/templateElements/delete/{element}"), &json!({})).await;
    assert_eq!(status, 200);
    let (status, _) = stack.post_as(&org_admin, &format!("/templates/delete/{id}"), &json!({})).await;
    assert_eq!(status, 200);
    let (status, _) = stack.post_as(&user_a, &format!("/templates/view/{id}"), &json!({})).await;
    assert_eq!(status, 404);
    stack.stop().await;
}
