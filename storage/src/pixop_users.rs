//! The Pixop API's users and teams (CONTRACT section 9).
//!
//! A team is an ordinary account: its projects are the ones every other
//! API of the account sees. A user belongs to one or more teams, signs in
//! with email and password (the Argon2id PHC string is made by the server;
//! storage only keeps it) and signs its JWTs with an Ed25519 key of its
//! own, kept here as a 32-byte seed, so that rotating it
//! (`generate-auth-secret`) invalidates that user's tokens and nobody
//! else's.

use serde::{Deserialize, Serialize};

use crate::{ids, AccountId, BatchOutcome, Collection, Error, Result, Step, Store};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixopUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    /// Moves whenever the password changes; a token carries the value it
    /// was issued under, so older tokens stop working.
    pub password_epoch: u64,
    /// The first is the default team of a token asked for without one.
    pub teams: Vec<AccountId>,
    pub banned: Option<Ban>,
    /// The Ed25519 seed the user's tokens are signed with, hex.
    pub auth_seed: String,
    /// Moves with the seed: the `kid` of the user's tokens.
    pub auth_key_id: String,
    /// The seed's `apiRequestSignatureSecret`.
    pub signature_secret: String,
    /// Unix milliseconds.
    pub created: u64,
    pub updated: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    pub reason: String,
    pub at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixopTeam {
    pub id: AccountId,
    pub name: String,
    pub created: u64,
    pub updated: u64,
}

/// A user could not be made because the email is already someone's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a user with the email {0:?} already exists")]
pub struct EmailTaken(pub String);

/// What a new user is made of; the server hashes the password.
pub struct NewPixopUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub team: &'a str,
    pub password_hash: String,
}

/// Emails compare without case, as mail servers treat them in practice.
fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

impl Store {
    /// Makes a user in team `team` (by name), making the team, and its
    /// account, when no team has that name yet.
    pub async fn create_pixop_user(
        &self,
        new: NewPixopUser<'_>,
    ) -> Result<Result<(PixopUser, PixopTeam), EmailTaken>> {
        // A taken email is refused before the team (and its account) is
        // made: a duplicate must not leave a stray team behind. The batch
        // below still decides between two requests for one email at once.
        let email = email_key(new.email);
        if self
            .repo
            .get(Collection::PixopEmails, email.as_str())?
            .is_some()
        {
            return Ok(Err(EmailTaken(new.email.trim().to_owned())));
        }
        let team = self.pixop_team_named(new.team)?;
        let now = ids::unix_now_ms();
        let user = PixopUser {
            id: uuid::Uuid::new_v4().to_string(),
            email: new.email.trim().to_owned(),
            name: new.name.to_owned(),
            password_hash: new.password_hash,
            password_epoch: 0,
            teams: vec![team.id.clone()],
            banned: None,
            auth_seed: ids::hex(&ids::random_bytes::<32>()),
            auth_key_id: ids::random_hex128(),
            signature_secret: ids::random_secret(),
            created: now,
            updated: now,
        };
        let steps = [
            Step::require_absent(Collection::PixopEmails, email.as_str()),
            Step::insert(
                Collection::PixopEmails,
                email.as_str(),
                user.id.as_bytes().to_vec(),
            ),
            Step::insert(
                Collection::PixopUsers,
                user.id.as_str(),
                serde_json::to_vec(&user)?,
            ),
        ];
        if let BatchOutcome::Unmet(_) = self.repo.batch(&steps)? {
            return Ok(Err(EmailTaken(user.email)));
        }
        self.flush().await?;
        Ok(Ok((user, team)))
    }

    /// The team named `name`, made (with its account) when there is none.
    /// Two first uses at once get the same team.
    fn pixop_team_named(&self, name: &str) -> Result<PixopTeam> {
        loop {
            if let Some(id) = self.repo.get(Collection::PixopTeamNames, name)? {
                let id = String::from_utf8(id)
                    .map_err(|_| Error::Corrupt("a team name points at no id".into()))?;
                if let Some(team) = self.pixop_team(&id)? {
                    return Ok(team);
                }
            }
            let account = self.create_account()?;
            let now = ids::unix_now_ms();
            let team = PixopTeam {
                id: account,
                name: name.to_owned(),
                created: now,
                updated: now,
            };
            let steps = [
                Step::require_absent(Collection::PixopTeamNames, name),
                Step::insert(
                    Collection::PixopTeamNames,
                    name,
                    team.id.0.as_bytes().to_vec(),
                ),
                Step::insert(
                    Collection::PixopTeams,
                    team.id.0.as_str(),
                    serde_json::to_vec(&team)?,
                ),
            ];
            match self.repo.batch(&steps)? {
                BatchOutcome::Applied(_) => return Ok(team),
                // Made meanwhile by another request: read it again (the
                // account just made stays empty, as a keyless account).
                BatchOutcome::Unmet(_) => continue,
            }
        }
    }

    /// Adds user `id` to team `team` (by name, made when new); returns the
    /// user and the team.
    pub async fn join_pixop_team(&self, id: &str, team: &str) -> Result<(PixopUser, PixopTeam)> {
        let team = self.pixop_team_named(team)?;
        let joined = team.id.clone();
        let user = self
            .update_pixop_user(id, |u| {
                if !u.teams.contains(&joined) {
                    u.teams.push(joined.clone());
                }
            })
            .await?;
        Ok((user, team))
    }

    pub fn pixop_team(&self, id: &str) -> Result<Option<PixopTeam>> {
        self.record(Collection::PixopTeams, id)
    }

    pub fn pixop_user(&self, id: &str) -> Result<Option<PixopUser>> {
        self.record(Collection::PixopUsers, id)
    }

    pub fn pixop_user_by_email(&self, email: &str) -> Result<Option<PixopUser>> {
        match self.repo.get(Collection::PixopEmails, &email_key(email))? {
            Some(id) => {
                let id = String::from_utf8(id)
                    .map_err(|_| Error::Corrupt("an email points at no user id".into()))?;
                self.pixop_user(&id)
            }
            None => Ok(None),
        }
    }

    /// Changes user `id` with `change` (read-modify-write without lost
    /// updates), stamping `updated`.
    pub async fn update_pixop_user(
        &self,
        id: &str,
        mut change: impl FnMut(&mut PixopUser),
    ) -> Result<PixopUser> {
        let now = ids::unix_now_ms();
        let user = self.update_record(
            Collection::PixopUsers,
            id,
            || Error::Corrupt(format!("the Pixop user {id} vanished")),
            |user: &mut PixopUser| {
                change(user);
                user.updated = now;
                Ok::<_, Error>(())
            },
        )?;
        self.flush().await?;
        Ok(user)
    }

    /// A new signing key for the user: its older tokens no longer verify.
    pub async fn rotate_pixop_auth_key(&self, id: &str) -> Result<PixopUser> {
        let seed = ids::hex(&ids::random_bytes::<32>());
        let key_id = ids::random_hex128();
        self.update_pixop_user(id, |u| {
            u.auth_seed = seed.clone();
            u.auth_key_id = key_id.clone();
        })
        .await
    }

    pub async fn rotate_pixop_signature_secret(&self, id: &str) -> Result<PixopUser> {
        let secret = ids::random_secret();
        self.update_pixop_user(id, |u| u.signature_secret = secret.clone())
            .await
    }

    /// When a Pixop client last renamed project `uid` (unix ms), if ever.
    pub fn pixop_project_time(&self, uid: &str) -> Result<Option<u64>> {
        self.record(Collection::PixopProjectTimes, uid)
    }

    /// Renames the account's project `uid`; the name stays unique in the
    /// account ([`Error::ProjectExists`] otherwise).
    pub async fn rename_project(
        &self,
        account: &AccountId,
        uid: &str,
        name: &str,
    ) -> Result<crate::Project> {
        let mut project = self.project(account, uid)?;
        if project.name == name {
            return Ok(project);
        }
        let old_name = crate::projects::name_key(account, &project.name);
        let new_name = crate::projects::name_key(account, name);
        project.name = name.to_owned();
        let steps = [
            Step::require_absent(Collection::ProjectNames, new_name.as_str()),
            Step::require_present(Collection::ProjectNames, old_name.as_str()),
            Step::insert(
                Collection::ProjectNames,
                new_name.as_str(),
                uid.as_bytes().to_vec(),
            ),
            Step::remove(Collection::ProjectNames, old_name.as_str()),
            Step::insert(Collection::Projects, uid, serde_json::to_vec(&project)?),
            Step::insert(
                Collection::PixopProjectTimes,
                uid,
                serde_json::to_vec(&ids::unix_now_ms())?,
            ),
        ];
        match self.repo.batch(&steps)? {
            BatchOutcome::Applied(_) => {
                self.flush().await?;
                Ok(project)
            }
            BatchOutcome::Unmet(0) => Err(Error::ProjectExists(name.to_owned())),
            BatchOutcome::Unmet(_) => Err(Error::ProjectNotFound(uid.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NewPixopUser;
    use crate::test_support::store;

    fn new<'a>(email: &'a str, team: &'a str) -> NewPixopUser<'a> {
        NewPixopUser {
            email,
            name: "",
            team,
            password_hash: "h".into(),
        }
    }

    #[tokio::test]
    async fn a_team_name_is_one_team_and_an_email_one_user() {
        let (_dir, store) = store();
        let (a, ta) = store
            .create_pixop_user(new("A@x.org", "t"))
            .await
            .unwrap()
            .unwrap();
        let (_, tb) = store
            .create_pixop_user(new("b@x.org", "t"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ta.id, tb.id);
        assert!(store
            .create_pixop_user(new("a@X.org", "u"))
            .await
            .unwrap()
            .is_err());
        // The refused user's team was not made.
        assert!(store
            .repo
            .get(crate::Collection::PixopTeamNames, "u")
            .unwrap()
            .is_none());
        assert_eq!(
            store.pixop_user_by_email("a@x.org").unwrap().unwrap().id,
            a.id
        );
        let (_, tc) = store
            .create_pixop_user(new("c@x.org", "other"))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(tc.id, ta.id);
    }
}
