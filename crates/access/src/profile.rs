//! Settings profiles: named lists of setting values and constraints
//! (ClickHouse's `CREATE SETTINGS PROFILE`), applied to users and roles
//! (`TO ...`) or named by them (`SETTINGS PROFILE 'p'`), and the check a
//! session makes before a statement changes a setting.
//!
//! **Invariants:** resolving expands each profile once, so a cycle of
//! profiles written by hand still ends; a constrained setting is checked
//! only when a statement changes its value, never when it repeats it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use qh_types::settings::SettingError;

use crate::error::AccessError;

/// Whether a session may change a setting a profile names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Writability {
    Writable,
    /// `CONST` (also written `READONLY`): never changed.
    Const,
    /// Changeable within MIN/MAX even under `readonly = 1`.
    ChangeableInReadonly,
}

impl Writability {
    pub fn keyword(self) -> &'static str {
        match self {
            Writability::Writable => "WRITABLE",
            Writability::Const => "CONST",
            Writability::ChangeableInReadonly => "CHANGEABLE_IN_READONLY",
        }
    }
}

/// One element of a profile, a user's or a role's `SETTINGS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SettingElement {
    /// `PROFILE 'name'` / `INHERIT 'name'`: that profile's elements here.
    Profile { name: String },
    /// `name [= value] [MIN [=] v] [MAX [=] v] [CONST|WRITABLE|...]`.
    Setting {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        writability: Option<Writability>,
    },
}

impl SettingElement {
    /// Refuses a setting ClickHouse does not know, a value the setting
    /// cannot take and a MIN/MAX that is not a number.
    pub fn validate(&self) -> Result<(), AccessError> {
        let SettingElement::Setting {
            name,
            value,
            min,
            max,
            ..
        } = self
        else {
            return Ok(());
        };
        let known = match value {
            Some(v) => qh_types::settings::check_setting(name, v),
            // No value: only the name is checked (any value may be refused
            // later, but not an unknown name).
            None => match qh_types::settings::check_setting(name, "") {
                Err(e @ SettingError::Unknown(_)) => Err(e),
                _ => Ok(()),
            },
        };
        known.map_err(AccessError::Setting)?;
        for bound in [min, max].into_iter().flatten() {
            if bound.parse::<f64>().is_err() {
                return Err(AccessError::BadArguments(format!(
                    "MIN and MAX of setting {name} must be numbers, not '{bound}'"
                )));
            }
        }
        Ok(())
    }

    /// The element as `SHOW CREATE` writes it.
    pub fn sql(&self) -> String {
        match self {
            SettingElement::Profile { name } => format!("PROFILE '{}'", name.replace('\'', "\\'")),
            SettingElement::Setting {
                name,
                value,
                min,
                max,
                writability,
            } => {
                let mut s = name.clone();
                if let Some(v) = value {
                    s.push_str(&format!(" = {}", literal(v)));
                }
                if let Some(v) = min {
                    s.push_str(&format!(" MIN {v}"));
                }
                if let Some(v) = max {
                    s.push_str(&format!(" MAX {v}"));
                }
                if let Some(w) = writability {
                    s.push(' ');
                    s.push_str(w.keyword());
                }
                s
            }
        }
    }
}

/// A value as SQL: bare when a number, quoted otherwise.
fn literal(v: &str) -> String {
    if v.parse::<f64>().is_ok() {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// `SETTINGS ...` of a user, role or profile as `SHOW CREATE` writes it.
pub fn settings_sql(elements: &[SettingElement]) -> String {
    if elements.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = elements.iter().map(SettingElement::sql).collect();
    format!(" SETTINGS {}", parts.join(", "))
}

/// `TO ...` of a profile or quota: whom it applies to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Applies {
    /// `ALL [EXCEPT ...]`.
    #[serde(default)]
    pub all: bool,
    /// Users and roles (`TO a, b`), or the exceptions of `ALL EXCEPT`.
    #[serde(default)]
    pub names: Vec<String>,
}

impl Applies {
    /// Whether it applies to `user` holding `roles`.
    pub fn applies(&self, user: &str, roles: &BTreeSet<String>) -> bool {
        let named = self
            .names
            .iter()
            .any(|n| n == user || roles.contains(n.as_str()));
        self.all != named
    }

    /// `TO ...` as `SHOW CREATE` writes it (empty for `NONE`).
    pub fn sql(&self) -> String {
        match (self.all, self.names.is_empty()) {
            (false, true) => String::new(),
            (false, false) => format!(" TO {}", self.names.join(", ")),
            (true, true) => " TO ALL".into(),
            (true, false) => format!(" TO ALL EXCEPT {}", self.names.join(", ")),
        }
    }
}

/// A settings profile as the coordinator stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileDef {
    pub name: String,
    #[serde(default)]
    pub elements: Vec<SettingElement>,
    #[serde(default)]
    pub to: Applies,
}

impl ProfileDef {
    pub fn create_sql(&self) -> String {
        format!(
            "CREATE SETTINGS PROFILE {}{}{}",
            self.name,
            settings_sql(&self.elements),
            self.to.sql()
        )
    }
}

/// The limits profiles put on one setting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Constraint {
    pub min: Option<String>,
    pub max: Option<String>,
    pub writability: Option<Writability>,
}

/// What a user's profiles give it: setting values (later ones win) and
/// constraints, and the profiles applied, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedSettings {
    pub values: Vec<(String, String)>,
    pub constraints: BTreeMap<String, Constraint>,
    pub profiles: Vec<String>,
}

impl ResolvedSettings {
    /// Expands `elements` on top of what is resolved so far; `profile`
    /// looks a profile up (a dropped one gives nothing).
    pub fn apply(
        &mut self,
        elements: &[SettingElement],
        profile: &impl Fn(&str) -> Option<ProfileDef>,
        seen: &mut BTreeSet<String>,
    ) {
        for e in elements {
            match e {
                SettingElement::Profile { name } => self.apply_profile(name, profile, seen),
                SettingElement::Setting {
                    name,
                    value,
                    min,
                    max,
                    writability,
                } => {
                    if let Some(v) = value {
                        self.values.retain(|(n, _)| n != name);
                        self.values.push((name.clone(), v.clone()));
                    }
                    if min.is_some() || max.is_some() || writability.is_some() {
                        let c = self.constraints.entry(name.clone()).or_default();
                        if min.is_some() {
                            c.min = min.clone();
                        }
                        if max.is_some() {
                            c.max = max.clone();
                        }
                        if writability.is_some() {
                            c.writability = *writability;
                        }
                    }
                }
            }
        }
    }

    /// Applies the profile `name` (once per resolution).
    pub fn apply_profile(
        &mut self,
        name: &str,
        profile: &impl Fn(&str) -> Option<ProfileDef>,
        seen: &mut BTreeSet<String>,
    ) {
        if !seen.insert(name.to_string()) {
            return;
        }
        if let Some(p) = profile(name) {
            self.profiles.push(p.name.clone());
            self.apply(&p.elements, profile, seen);
        }
    }

    /// Whether a statement may set `name` to `value` where the user's
    /// sessions start with `current` and `readonly` (both after the
    /// profiles). Repeating the current value is always allowed.
    pub fn check_change(
        &self,
        name: &str,
        value: &str,
        current: &str,
        readonly: u64,
    ) -> Result<(), AccessError> {
        if qh_types::settings::same_value(value, current) {
            return Ok(());
        }
        let constraint = self.constraints.get(name);
        let writability = constraint.and_then(|c| c.writability);
        let in_readonly = writability == Some(Writability::ChangeableInReadonly);
        if (readonly == 1 && !in_readonly) || (readonly > 1 && name == "readonly") {
            return Err(AccessError::Readonly(format!(
                "Cannot modify '{name}' setting in readonly mode"
            )));
        }
        let Some(c) = constraint else {
            return Ok(());
        };
        if writability == Some(Writability::Const) {
            return Err(AccessError::Constraint(format!(
                "Setting {name} should not be changed"
            )));
        }
        let number = |v: &str| v.trim().parse::<f64>().ok();
        if c.min.is_some() || c.max.is_some() {
            let Some(v) = number(value) else {
                return Err(AccessError::Constraint(format!(
                    "Setting {name} must be a number between its MIN and MAX, not '{value}'"
                )));
            };
            if let Some(min) = c
                .min
                .as_deref()
                .filter(|m| number(m).is_some_and(|m| v < m))
            {
                return Err(AccessError::Constraint(format!(
                    "Setting {name} shouldn't be less than {min}"
                )));
            }
            if let Some(max) = c
                .max
                .as_deref()
                .filter(|m| number(m).is_some_and(|m| v > m))
            {
                return Err(AccessError::Constraint(format!(
                    "Setting {name} shouldn't be greater than {max}"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(
        name: &str,
        value: Option<&str>,
        min: Option<&str>,
        max: Option<&str>,
    ) -> SettingElement {
        SettingElement::Setting {
            name: name.into(),
            value: value.map(Into::into),
            min: min.map(Into::into),
            max: max.map(Into::into),
            writability: None,
        }
    }

    #[test]
    fn profiles_resolve_in_order_and_cycles_end() {
        let profiles: BTreeMap<&str, ProfileDef> = [
            (
                "base",
                ProfileDef {
                    name: "base".into(),
                    elements: vec![
                        setting("max_threads", Some("2"), None, None),
                        setting("max_memory_usage", Some("100"), Some("10"), Some("1000")),
                        SettingElement::Profile {
                            name: "loop".into(),
                        },
                    ],
                    to: Applies::default(),
                },
            ),
            (
                "loop",
                ProfileDef {
                    name: "loop".into(),
                    elements: vec![SettingElement::Profile {
                        name: "base".into(),
                    }],
                    to: Applies::default(),
                },
            ),
        ]
        .into();
        let lookup = |n: &str| profiles.get(n).cloned();
        let mut r = ResolvedSettings::default();
        let mut seen = BTreeSet::new();
        r.apply(
            &[
                SettingElement::Profile {
                    name: "base".into(),
                },
                setting("max_threads", Some("4"), None, None),
                SettingElement::Profile {
                    name: "gone".into(),
                },
            ],
            &lookup,
            &mut seen,
        );
        assert_eq!(
            r.values,
            vec![
                ("max_memory_usage".to_string(), "100".to_string()),
                ("max_threads".to_string(), "4".to_string())
            ]
        );
        assert_eq!(r.profiles, vec!["base".to_string(), "loop".to_string()]);
        assert!(r.check_change("max_memory_usage", "500", "100", 0).is_ok());
        assert!(r.check_change("max_memory_usage", "100", "100", 1).is_ok());
        let low = r
            .check_change("max_memory_usage", "5", "100", 0)
            .unwrap_err();
        assert_eq!(
            low.to_string(),
            "Setting max_memory_usage shouldn't be less than 10"
        );
        let high = r
            .check_change("max_memory_usage", "2000", "100", 0)
            .unwrap_err();
        assert_eq!(
            high.code(),
            qh_types::ErrorCode::SETTING_CONSTRAINT_VIOLATION
        );
        let ro = r.check_change("max_threads", "1", "4", 1).unwrap_err();
        assert_eq!(ro.code(), qh_types::ErrorCode::READONLY);
        assert_eq!(
            ro.to_string(),
            "Cannot modify 'max_threads' setting in readonly mode"
        );
        assert!(r.check_change("max_threads", "1", "4", 2).is_ok());
        assert!(r.check_change("readonly", "0", "2", 2).is_err());
    }

    #[test]
    fn const_and_changeable_in_readonly() {
        let mut r = ResolvedSettings::default();
        r.apply(
            &[
                SettingElement::Setting {
                    name: "max_execution_time".into(),
                    value: Some("5".into()),
                    min: None,
                    max: None,
                    writability: Some(Writability::Const),
                },
                SettingElement::Setting {
                    name: "max_threads".into(),
                    value: None,
                    min: Some("1".into()),
                    max: Some("4".into()),
                    writability: Some(Writability::ChangeableInReadonly),
                },
            ],
            &|_| None,
            &mut BTreeSet::new(),
        );
        let e = r
            .check_change("max_execution_time", "50", "5", 0)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Setting max_execution_time should not be changed"
        );
        assert!(r.check_change("max_threads", "2", "0", 1).is_ok());
        assert!(r.check_change("max_threads", "8", "0", 1).is_err());
    }

    #[test]
    fn applies_to_users_roles_and_all_except() {
        let roles: BTreeSet<String> = ["analyst".to_string()].into();
        let to = |all: bool, names: &[&str]| Applies {
            all,
            names: names.iter().map(|s| s.to_string()).collect(),
        };
        assert!(to(false, &["robin"]).applies("robin", &BTreeSet::new()));
        assert!(to(false, &["analyst"]).applies("robin", &roles));
        assert!(!to(false, &[]).applies("robin", &roles));
        assert!(to(true, &[]).applies("robin", &roles));
        assert!(!to(true, &["analyst"]).applies("robin", &roles));
        assert_eq!(to(true, &["a", "b"]).sql(), " TO ALL EXCEPT a, b");
    }
}
