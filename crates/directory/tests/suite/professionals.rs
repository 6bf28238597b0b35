//! Professionals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

pub async fn professionals_crud(ctx: &Ctx) {
    let pros = ctx.dir.professionals();
    let created = pros.create(new_professional("899700000001")).await.unwrap();
    assert!(created.subject.starts_with("f:"));
    assert!(created.subject.ends_with(":899700000001"));
    assert_eq!(created.subject.split(':').count(), 3);
    assert_eq!(created.status, AccountStatus::Active);
    assert!(created.created_at > 0);

    let by_nid = pros.get_by_national_id("899700000001").await.unwrap().unwrap();
    assert_eq!(by_nid, created);
    assert_eq!(pros.get_by_subject(&created.subject).await.unwrap().unwrap(), created);
    assert_eq!(pros.get_by_id(&created.id).await.unwrap().unwrap(), created);
    assert!(pros.get_by_national_id("899700000099").await.unwrap().is_none());
    // The PSC JSON survives the round trip through the text column.
    assert_eq!(by_nid.practices[0].activities[0].numero_finess_etablissement_juridique, "750000001");
    assert_eq!(by_nid.psc_claims()["SubjectOrganization"], "Cabinet du Parc");

    let imported = pros
        .create(NewProfessional {
            subject: Some("f:imported-uuid:899700000002".into()),
            ..new_professional("899700000002")
        })
        .await
        .unwrap();
    assert_eq!(imported.subject, "f:imported-uuid:899700000002");
    pros.create(new_professional("899700000003")).await.unwrap();

    assert_eq!(pros.count().await.unwrap(), 3);
    let page: Vec<String> = pros.list(1, 10).await.unwrap().into_iter().map(|p| p.national_id).collect();
    assert_eq!(page, ["899700000002", "899700000003"]);
    assert_eq!(pros.list(0, 1).await.unwrap().len(), 1);

    let updated = pros
        .update(
            &created.id,
            ProfessionalUpdate {
                given_name: "Jeanne-Marie".into(),
                family_name: "Durand".into(),
                email: None,
                civility: "MME".into(),
                practices: vec![practice("10", "Hôpital Nord"), practice("21", "Pharmacie")],
                other_ids: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.given_name, "Jeanne-Marie");
    assert_eq!(updated.family_name, "Durand");
    assert_eq!(updated.email, None);
    assert_eq!(updated.practices.len(), 2);
    assert!(updated.other_ids.is_empty());
    assert_eq!(updated.subject, created.subject, "the subject never changes");
    assert_eq!(updated.national_id, created.national_id);

    pros.set_password_hash(&created.id, None).await.unwrap();
    assert_eq!(pros.get_by_id(&created.id).await.unwrap().unwrap().password_hash, None);
    pros.set_password_hash(&created.id, Some("$argon2id$new".into())).await.unwrap();
    assert_eq!(pros.get_by_id(&created.id).await.unwrap().unwrap().password_hash.as_deref(), Some("$argon2id$new"));

    pros.set_status(&created.id, AccountStatus::Blocked).await.unwrap();
    assert_eq!(pros.get_by_id(&created.id).await.unwrap().unwrap().status, AccountStatus::Blocked);
    pros.set_status(&created.id, AccountStatus::Active).await.unwrap();
    assert_eq!(pros.get_by_id(&created.id).await.unwrap().unwrap().status, AccountStatus::Active);

    assert!(pros.delete(&created.id).await.unwrap());
    assert!(!pros.delete(&created.id).await.unwrap());
    assert!(pros.get_by_id(&created.id).await.unwrap().is_none());
    assert_eq!(pros.count().await.unwrap(), 2);
}

pub async fn professionals_conflicts_and_errors(ctx: &Ctx) {
    let pros = ctx.dir.professionals();
    let first = pros.create(new_professional("899700000001")).await.unwrap();
    let dup = pros.create(new_professional("899700000001")).await;
    assert!(matches!(dup, Err(DirectoryError::Conflict(_))), "{dup:?}");
    let dup_subject =
        pros.create(NewProfessional { subject: Some(first.subject.clone()), ..new_professional("899700000002") }).await;
    assert!(matches!(dup_subject, Err(DirectoryError::Conflict(_))), "{dup_subject:?}");

    let bad_civility = pros.create(NewProfessional { civility: "Dr".into(), ..new_professional("899700000003") }).await;
    assert!(matches!(bad_civility, Err(DirectoryError::Invalid(_))));
    let empty = pros.create(new_professional("")).await;
    assert!(matches!(empty, Err(DirectoryError::Invalid(_))));

    let missing = pros.update("nope", ProfessionalUpdate::default()).await;
    assert!(matches!(missing, Err(DirectoryError::NotFound)));
    assert!(matches!(pros.set_status("nope", AccountStatus::Blocked).await, Err(DirectoryError::NotFound)));
    assert!(matches!(pros.set_password_hash("nope", None).await, Err(DirectoryError::NotFound)));
    assert_eq!(pros.count().await.unwrap(), 1);
}

// ---------------------------------------------------------------------------------------------
